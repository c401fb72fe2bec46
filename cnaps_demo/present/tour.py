"""The guided tour of the "How does it work?" tab: the question answered step by step, each step
pointing at the live view on the Upscale tab that shows it on one picture (the visitor's, or a
bundled example), and a small glossary of every term the page uses (no gradio)."""

from __future__ import annotations

import html
from dataclasses import dataclass


@dataclass(frozen=True)
class TourStep:
    title: str
    text: str  # plain words, our own
    target: str  # the element id of the live view on the Upscale tab
    button: str


STEPS = (
    TourStep(
        "1. The task",
        "Enlarging 2x makes four pixels out of each one: three of every four were never in your file, so "
        "something has to decide them. Drag the slider: bicubic on the left only blends neighbours, the "
        "AI engine on the right decides them.",
        "cnaps-slider",
        "Show the slider",
    ),
    TourStep(
        "2. What the network looks at",
        "A network is a stack of layers; each one looks at a 3x3 patch of the layer before, so a few layers "
        "deep a pixel of the result depends on dozens of input pixels around it. See each layer's channels "
        "on your picture, and see that the network only adds a difference picture to a plain enlargement.",
        "cnaps-inside",
        "Look inside",
    ),
    TourStep(
        "3. Where a pixel comes from",
        "Click a spot of the result: the map shows which input pixels decided it, and how far the network "
        "looked (the box).",
        "cnaps-inside-pick",
        "Trace a pixel",
    ),
    TourStep(
        "4. What it learned from",
        "It learned from pairs: clean drawings, and copies blurred, shrunk, noised and JPEG-compressed on "
        "purpose. Damage your own picture the same way and watch the model undo it, against bicubic.",
        "cnaps-learned",
        "Make a training pair",
    ),
    TourStep(
        "5. Why crisp, not an average",
        "Many sharp pictures shrink to your picture. Their average is soft; a model trained to fool a "
        "critic commits to one sharp answer instead. The candidates and their average show it.",
        "cnaps-crisp",
        "Compare the candidates",
    ),
    TourStep(
        "6. Where it invented",
        "Crisp is not correct. The maps show what the model drew that bicubic did not, and where its result "
        "no longer agrees with your picture; the figures under the slider say it in words.",
        "cnaps-invented-note",
        "See the inventions",
    ),
)

GLOSSARY = (
    ("pixel grid", "The picture as rows and columns of coloured dots; 2x enlargement doubles both."),
    (
        "tensor",
        "A block of numbers with several axes, e.g. colour channel x height x width: how a network holds a picture.",
    ),
    (
        "channel",
        "One of the pictures a layer makes: each responds to one kind of pattern (an edge direction, a flat fill).",
    ),
    (
        "convolution",
        "Sliding a small grid of learned weights (e.g. 3x3) over the picture and adding up weights x pixels at each place.",
    ),
    ("receptive field", "The input pixels that can influence one output pixel at all; it grows with every layer."),
    ("residual", "The difference a network adds to a plain enlargement, instead of drawing the whole picture."),
    (
        "U-Net",
        "A network that shrinks the picture step by step to see the big shapes, then enlarges it again, passing details across.",
    ),
    (
        "latent",
        "Stable Diffusion's compressed picture: 1/8 of the size, 4 numbers per position; the model works there.",
    ),
    ("VAE", "The encoder/decoder pair that turns a picture into a latent and back."),
    ("CLIP", "The text encoder that turns the prompt into numbers the diffusion model is guided by."),
    ("seed", "The number that fixes the random noise: the same seed gives the same result."),
    ("strength", "How much of the picture img2img re-draws: 0 keeps it, 1 draws anew from noise."),
    ("ControlNet", "A side network that keeps Stable Diffusion to the layout of a given picture (here: its tiles)."),
    (
        "LR-PSNR",
        "The result shrunk back to your picture's size, compared with your picture: high means it agrees with it.",
    ),
    (
        "PSNR / SSIM",
        "Pixel-by-pixel and structure closeness to an original, when there is one (Simulate a blurry source).",
    ),
    ("dB", "Decibels: a log scale; +3 dB of PSNR halves the squared error, +10 dB divides it by ten."),
)

# A step's button: switch to the Upscale tab, bring the view into sight. Bundled with the page.
SHOW_JS = """(target) => {
  const tab = Array.from(document.querySelectorAll('button[role="tab"]')).find(b => b.textContent.trim().startsWith('Upscale'));
  if (tab) tab.click();
  setTimeout(() => { const el = document.getElementById(target); if (el) el.scrollIntoView({behavior: 'smooth', block: 'start'}); }, 150);
  return target;
}"""


def intro_html() -> str:
    return (
        '<div class="cnaps-tour-intro"><h2>The tour: the answer, on one picture</h2>'
        "<p>Each step below opens the live view that shows it, computed on the picture you upscaled (or a "
        "bundled example: click one on the Upscale tab). Run an anime CNN engine (Real-CUGAN or Real-ESRGAN) "
        "first to see the network from inside.</p></div>"
    )


def step_html(step: TourStep) -> str:
    return f"<h3>{html.escape(step.title)}</h3><p>{html.escape(step.text)}</p>"


def glossary_html() -> str:
    items = "".join(f"<dt><b>{html.escape(term)}</b></dt><dd>{html.escape(meaning)}</dd>" for term, meaning in GLOSSARY)
    return f'<details class="cnaps-glossary" open><summary><b>Glossary: the words this page uses</b></summary><dl>{items}</dl></details>'
