"""The "How does it work?" text and the separate "Engines and licences" section, as HTML.

Both are generated here from data (``references.REFERENCES`` and each engine's
``credits``) and escaped; the UI only displays them. The explanation links only to the
references; engine credits appear only in ``credits_html``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from .references import REFERENCES, Reference, get_reference

SECTION_CLASS = "cnaps-explain"
CREDITS_CLASS = "cnaps-credits"


def _a(url: str, label: str) -> str:
    """A link that opens in a new tab without giving the new page access to this one."""
    return f'<a href="{escape(url, quote=True)}" target="_blank" rel="noopener">{escape(label)}</a>'


def _cite(key: str) -> str:
    """An in-text mention of a reference (its links are in the Sources list)."""
    ref = get_reference(key)
    return f'<cite class="cnaps-cite" title="{escape(ref.title, quote=True)}">{escape(ref.short)}</cite>'


def _flow(*steps: str) -> str:
    items = "".join(f"<li><span>{step}</span></li>" for step in steps)
    return f'<ol class="cnaps-flow">{items}</ol>'


# Paragraphs are our own words; the few inline tags are written by us, never user input.
_TASK = """
<h2 id="task">1. The task: 2x super-resolution of an illustration</h2>
<p>Enlarging a picture 2x means inventing four output pixels for every input pixel.
Three of every four output pixels were never in the file, so <em>something</em> has to decide
what they are.</p>
<p>Illustrations make the difference easy to see: they are mostly <b>flat areas of colour</b>
separated by <b>clean dark outlines</b>. A classical resampler (nearest neighbour, bicubic,
Lanczos) only <b>interpolates</b>: each new pixel is a weighted average of its neighbours. It
cannot know that the grey ramp across an edge used to be a sharp black line, so the line
stays soft, just bigger. That is the left side of the slider.</p>
"""

_PATHS = f"""
<h2 id="paths">2. Input &rarr; model &rarr; output: three ways to fill in the pixels</h2>
<h3>Classical resampling (the baseline)</h3>
{_flow("image", "fixed formula: weighted average of neighbours", "2x image")}
<p>No learning and no memory of what illustrations look like. Fast (milliseconds), faithful,
and soft. It adds nothing that was not already there.</p>

<h3>CNN upscalers: Real-CUGAN and Real-ESRGAN (anime)</h3>
{_flow("image", "convolutional network (fixed weights)", "2x image")}
<p>These networks were <b>trained on pairs</b>: crisp anime frames and copies of them that were
shrunk, blurred and JPEG-compressed on purpose. Training adjusts millions of weights until the
network turns the damaged copy back into the crisp original, so it learns what a blurred
outline <em>should</em> have been and redraws it thin and dark.</p>
<p>Real-CUGAN uses a <b>UNet</b>: it looks at the picture at several smaller scales to understand
context ("this is an outline", "this is a flat cheek") and then builds the 2x picture back up,
with shortcut connections that carry the fine detail across. Its <i>denoise</i> setting picks
versions trained to remove more or less JPEG noise. The same input always gives the same
output; it sharpens what is there and rarely invents new objects.</p>

<h3>Diffusion: Stable Diffusion img2img (DreamShaper)</h3>
{
    _flow(
        "image (first enlarged 2x)",
        "VAE encoder",
        "latent: 4 channels at 1/8 the size (1024&times;1024 px &rarr; 4&times;128&times;128)",
        "add noise: <i>strength</i> decides how much",
        "UNet removes the noise step by step, steered by the CLIP text embedding of the prompt",
        "VAE decoder",
        "image",
    )
}
<p>The VAE squeezes the picture into a small "latent" that keeps its layout but not its fine
detail. Noise is added (strength 0.3 keeps most of the picture; 1.0 keeps almost nothing).
The UNet then removes the noise over several steps; at each step the <b>prompt</b>, turned
into numbers by the CLIP text encoder, nudges it towards "clean anime line art". The decoder
turns the latent back into pixels.</p>
<p>Because the fine detail is rebuilt from what the model learned from many pictures, diffusion
<b>re-draws</b> the image: it can produce beautifully crisp lines, and also extra hair strands,
changed eyes or text-like squiggles that were never there. A different seed gives a different
drawing. The "latent x2" engine does the same with a model that upscales the latent itself.</p>
"""

_WHY = f"""
<h2 id="why">3. So why did your enlargement look like crisp anime art?</h2>
<p>Because the model did not recover the lost pixels: it <b>guessed</b> them, using a strong
prior of what anime art looks like. That prior is real and learnable: in {_cite("umair-fps")}
an image encoder learns the <i>painting style</i> of anime illustrations as its own signal,
separate from their content. A model with such a prior turns soft ramps into the thin
outlines and flat fills it has seen thousands of times.</p>
<p>Crisp is not the same as correct. {_cite("real")} judges generated images on fine-grained
attributes and style, and the same applies here: invented sharpness has to be checked
against the truth, not assumed. {_cite("artxai")} shows one way to ask which visual traits a
network relies on. In this demo, switch on <b>Simulate a blurry source</b>: the app shrinks
your picture, upscales it back and measures each result against the original (PSNR, higher is
closer). A result can look sharper and still score lower, because some of its detail is made up.</p>
"""


def _reference_item(ref: Reference) -> str:
    links = " &middot; ".join(_a(link.url, link.label) for link in ref.links)
    code_note = "" if ref.has_code else ' <span class="cnaps-muted">(no code released)</span>'
    return (
        f'<li id="ref-{escape(ref.key)}"><b>{escape(ref.title)}</b>. {escape(ref.summary)} '
        f"<br><i>Why it matters here:</i> {escape(ref.why_here)}<br>{links}{code_note}</li>"
    )


def _sources() -> str:
    items = "".join(_reference_item(ref) for ref in REFERENCES)
    return f'<h2 id="sources">4. Sources</h2><ul class="cnaps-sources">{items}</ul>'


def explanation_html() -> str:
    """The whole explanation (task, workflows, answer, sources) as one escaped HTML block."""
    return f'<div class="{SECTION_CLASS}">{_TASK}{_PATHS}{_WHY}{_sources()}</div>'


def credits_html(engines: Iterable, available: Callable[[Any], tuple[bool, str]]) -> str:
    """'Engines and licences': who made what actually runs, from each engine's ``credits``.

    ``available(engine)`` says whether it runs here (``api.availability``, passed in by the UI).
    """
    rows: list[str] = []
    for engine in engines:
        ok, reason = available(engine)
        status = "ready" if ok else f"unavailable here: {reason}"
        credits: Sequence = getattr(engine, "credits", ())
        credit_items = (
            "".join(
                "<li>"
                + _a(credit.url, credit.name)
                + f" &mdash; licence: {escape(credit.licence)}"
                + (f". {escape(credit.note)}" if credit.note else "")
                + "</li>"
                for credit in credits
            )
            or "<li>No third-party model.</li>"
        )
        rows.append(
            f"<li><b>{escape(engine.display_name)}</b> <code>{escape(engine.id)}</code> "
            f"({escape(engine.family)}, {escape(engine.device_need)}) &mdash; "
            f'<span class="cnaps-muted">{escape(status)}</span>'
            f"<ul>{credit_items}</ul></li>"
        )
    return (
        f'<div class="{CREDITS_CLASS}"><h2 id="credits">Engines and licences</h2>'
        "<p>What actually runs in this app, and who made it. These are credits for the software and "
        "weights, not sources for the explanation above.</p>"
        f'<ul class="cnaps-engines">{"".join(rows)}</ul></div>'
    )
