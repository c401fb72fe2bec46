"""The "How does it work?" tab and the separate "Engines and licences" section, as HTML.

Made for a room that skims: three short, visual sections (the task; input -> model -> output
for each path, drawn as a chain of blocks; why it looks crisp, with the sources and their
links), each with its long text folded behind "Read more" (``<details>``). Everything is
generated here from data (``references.REFERENCES`` and each engine's ``credits``) and escaped;
the UI only displays it. The explanation links only to the references; engine credits appear
only in ``credits_html``. The figures are inline SVG and inline-styled HTML that take their
colours from the page (``currentColor`` and semi-transparent accents), so they read in light
and dark themes without any page CSS.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from html import escape
from typing import Any

from . import explain_figures as fig
from .references import REFERENCES, Reference, get_reference

SECTION_CLASS = "cnaps-explain"
CREDITS_CLASS = "cnaps-credits"
QUESTION = (
    "\u201cI enlarged a blurry illustration by 2x and it looked like crisp anime art. "
    "How do AI models enhance cartoon-style images so sharply?\u201d"
)


def _a(url: str, label: str) -> str:
    """A link that opens in a new tab without giving the new page access to this one."""
    return f'<a href="{escape(url, quote=True)}" target="_blank" rel="noopener">{escape(label)}</a>'


def _cite(key: str) -> str:
    """An in-text mention of a reference (its links are in the Sources list)."""
    ref = get_reference(key)
    return f'<cite class="cnaps-cite" title="{escape(ref.title, quote=True)}">{escape(ref.short)}</cite>'


def _more(body: str) -> str:
    return (
        '<details class="cnaps-more"><summary style="cursor:pointer;font-weight:600">Read more</summary>'
        f"{body}</details>"
    )


def _gist(text: str) -> str:
    """The one or two sentences a skimming reader takes away (larger type)."""
    return f'<p class="cnaps-gist" style="font-size:1.15em;margin:0.3rem 0 0.5rem">{text}</p>'


# Paragraphs are our own words; the few inline tags are written by us, never user input.
_TASK_MORE = """
<p>Enlarging a picture 2x means inventing four output pixels for every input pixel.
Three of every four output pixels were never in the file, so <em>something</em> has to decide
what they are.</p>
<p>Illustrations make the difference easy to see: they are mostly <b>flat areas of colour</b>
separated by <b>clean dark outlines</b>. A classical resampler (nearest neighbour, bicubic,
Lanczos) only <b>interpolates</b>: each new pixel is a weighted average of its neighbours. It
cannot know that the grey ramp across an edge used to be a sharp black line, so the line
stays soft, just bigger. That is the left side of the slider.</p>
"""

_TASK = f"""
<section id="task">
<h2>1. The task: 2x super-resolution of an illustration</h2>
<div style="display:flex;flex-wrap:wrap;gap:0.5rem 1.5rem;align-items:center">
{fig.task_figure()}
<div style="flex:1 1 16rem">{
    _gist(
        "Single-image super-resolution: make the picture twice as wide and twice as high. "
        "<b>3 of every 4 pixels</b> of the result are not in the file: they must be filled in."
    )
}</div></div>
{_more(_TASK_MORE)}
</section>
"""

_CLASSICAL_MORE = """
<p>No learning and no memory of what illustrations look like. Fast (milliseconds), faithful,
and soft. It adds nothing that was not already there.</p>
"""

_CNN_MORE = """
<p>These networks were <b>trained on pairs</b>: crisp anime frames and copies of them that were
shrunk, blurred and JPEG-compressed on purpose. Training adjusts millions of weights until the
network turns the damaged copy back into the crisp original, so it learns what a blurred
outline <em>should</em> have been and redraws it thin and dark.</p>
<p>Real-CUGAN uses a <b>UNet</b>: it looks at the picture at several smaller scales to understand
context ("this is an outline", "this is a flat cheek") and then builds the 2x picture back up,
with shortcut connections that carry the fine detail across. Its <i>denoise</i> setting picks
versions trained to remove more or less JPEG noise. The same input always gives the same
output; it sharpens what is there and rarely invents new objects.</p>
"""

_SD_MORE = """
<p>The VAE squeezes the picture into a small "latent" (1/8 of the height and width, 4 channels:
a 1024&times;1024 picture becomes 128&times;128&times;4) that keeps its layout but not its fine
detail. Noise is added (strength 0.3 keeps most of the picture; 1.0 keeps almost nothing).
The UNet then removes the noise over several steps; at each step the <b>prompt</b>, turned
into numbers by the CLIP text encoder, nudges it towards "clean anime line art". The decoder
turns the latent back into pixels.</p>
<p>Because the fine detail is rebuilt from what the model learned from many pictures, diffusion
<b>re-draws</b> the image: it can produce beautifully crisp lines, and also extra hair strands,
changed eyes or text-like squiggles that were never there. A different seed gives a different
drawing. Here the model is DreamShaper 8 (<code>Lykon/dreamshaper-8</code>), a Stable Diffusion 1.5
fine-tune strong at illustration. The "latent x2" engine does the same with a model that upscales
the latent itself.</p>
"""


def _path(title: str, chain: str, gist: str, more: str) -> str:
    return (
        '<div class="cnaps-path" style="border-left:4px solid rgba(127,127,127,0.45);'
        'padding:0.1rem 0 0.1rem 0.9rem;margin:0.9rem 0">'
        f'<h3 style="margin-top:0.2rem">{title}</h3>{chain}{_gist(gist)}{_more(more)}</div>'
    )


_PATHS = f"""
<section id="paths">
<h2>2. Input &rarr; model &rarr; output: three ways to fill in the pixels</h2>
{
    _path(
        "Classical resampling (the baseline)",
        fig.chain(fig.CLASSICAL_CHAIN),
        "A fixed formula <b>interpolates</b>: every new pixel is an average of its neighbours. Edges stay soft.",
        _CLASSICAL_MORE,
    )
}
{
    _path(
        "Anime CNN: Real-CUGAN and Real-ESRGAN",
        fig.chain(fig.CNN_CHAIN),
        "A network <b>trained on pairs</b> (crisp art and damaged copies) redraws blurred outlines "
        "thin and dark. Same input, same output.",
        _CNN_MORE,
    )
}
{
    _path(
        "Stable Diffusion img2img (DreamShaper)",
        fig.chain(fig.SD_CHAIN),
        "The picture goes through the <b>VAE encoder</b> into a small latent, gets noise, and a "
        "<b>UNet</b> steered by the prompt (CLIP text) removes it: the model <b>re-draws</b> the picture.",
        _SD_MORE,
    )
}
</section>
"""

_WHY_MORE = f"""
<p>The model did not recover the lost pixels: it <b>guessed</b> them, using a strong prior of
what anime art looks like. That prior is real and learnable: in {_cite("umair-fps")} an image
encoder learns the <i>painting style</i> of anime illustrations as its own signal, separate
from their content. A model with such a prior turns soft ramps into the thin outlines and flat
fills it has seen thousands of times.</p>
<p>Crisp is not the same as correct. {_cite("real")} judges generated images on fine-grained
attributes and style, and the same applies here: invented sharpness has to be checked against
the truth, not assumed. {_cite("artxai")} shows one way to ask which visual traits a network
relies on. In this demo, switch on <b>Simulate a blurry source</b>: the app shrinks your
picture, upscales it back and measures each result against the original (PSNR, higher is
closer). A result can look sharper and still score lower, because some of its detail is made up.</p>
"""


def _reference_item(ref: Reference) -> str:
    links = " &middot; ".join(_a(link.url, link.label) for link in ref.links)
    code_note = "" if ref.has_code else ' <span class="cnaps-muted">(no code released)</span>'
    kind = "model" if ref.kind == "model" else "paper"
    return (
        f'<li id="ref-{escape(ref.key)}" style="margin-bottom:0.7rem">'
        f'<b>{escape(ref.short)}</b> <span class="cnaps-muted">({kind})</span>: {escape(ref.tagline)}'
        f"<br>{links}{code_note}"
        f'<details class="cnaps-more"><summary style="cursor:pointer">Read more</summary>'
        f"<p><i>{escape(ref.title)}</i>. {escape(ref.summary)}</p>"
        f"<p><i>Why it matters here:</i> {escape(ref.why_here)}</p></details></li>"
    )


def _why() -> str:
    items = "".join(_reference_item(ref) for ref in REFERENCES)
    return f"""
<section id="why">
<h2>3. Why it looks crisp, and where to read more</h2>
<div style="display:flex;flex-wrap:wrap;gap:0.5rem 1.5rem;align-items:center">
{fig.why_figure()}
<div style="flex:1 1 16rem">{
        _gist(
            "The model <b>guesses</b> the missing pixels from what anime art usually looks like: "
            "soft ramps become the thin lines and flat fills it learned. Crisp is not the same as correct."
        )
    }</div></div>
{_more(_WHY_MORE)}
<h3 id="sources">Sources: papers and the recommended model</h3>
<ul class="cnaps-sources" style="padding-left:1.1rem">{items}</ul>
</section>
"""


def explanation_html() -> str:
    """The whole explanation (task, workflows, answer and sources) as one escaped HTML block."""
    question = f'<p class="cnaps-question cnaps-muted" style="font-style:italic">{escape(QUESTION)}</p>'
    return f'<div class="{SECTION_CLASS}">{question}{_TASK}{_PATHS}{_why()}</div>'


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
            f"({escape(engine.kind_words)}, {escape(engine.device_need)}) &mdash; "
            f'<span class="cnaps-muted">{escape(status)}</span>'
            f"<ul>{credit_items}</ul></li>"
        )
    return (
        f'<div class="{CREDITS_CLASS}"><h2 id="credits">Engines and licences</h2>'
        "<p>What actually runs in this app, and who made it. These are credits for the software and "
        "weights, not sources for the explanation above.</p>"
        f'<ul class="cnaps-engines">{"".join(rows)}</ul></div>'
    )


def explanation_text() -> str:
    """The explanation without markup (for the API and MCP agents), then the sources with their URLs."""
    body = re.sub(r"<(script|style|svg|figure)\b.*?</\1>", " ", explanation_html(), flags=re.S)  # text only: no figures
    body = re.sub(r"</(p|h2|h3|li|summary|details|figcaption)>|<br\s*/?>", "\n", body)
    text = html.unescape(re.sub(r"<[^>]+>", " ", body))
    lines = [" ".join(line.split()) for line in text.splitlines()]
    sources = [f"- {ref.title}: {', '.join(link.url for link in ref.links)}" for ref in REFERENCES]
    return "\n".join(line for line in lines if line) + "\n\nSources:\n" + "\n".join(sources)
