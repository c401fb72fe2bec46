"""Words for the "Why is it crisp?" views (what it learned from, why crisp, the plots), each
sentence built from the figures of the run it describes (no gradio)."""

from __future__ import annotations

import html
from typing import Any

from .. import fidelity

LEARNED_INTRO = (
    "An anime upscaler learns from pairs: a clean drawing, and a copy made small and damaged on purpose "
    "(blur, resizing, noise, JPEG, each twice, then a ringing filter). Shown the damaged copy, it has to "
    "draw the clean one; millions of pairs later it can undo that kind of damage. Press the button to "
    "damage **your picture** the same way and let the model restore it: you set how much blur, noise and "
    "JPEG, the rest is drawn at random from the ranges the Real-ESRGAN authors published."
)
PLOTS_WAITING = '<p class="cnaps-empty">Run an engine to measure its edges and detail against bicubic.</p>'
NO_PICTURE = "*Run an engine on a picture first: the training pair is made from the picture you upscaled.*"
STOPPED = "*Stopped. Press the button again to make a training pair.*"


def gpu_engine_note(engine_name: str) -> str:
    return (
        f"*{html.escape(engine_name)} needs a GPU; the training-pair view runs the anime CNN engines on this "
        "server's CPU. Pick Real-CUGAN or Real-ESRGAN to see it.*"
    )


def candidate_caption(index: int, candidate: Any) -> str:
    """Short enough for a thumbnail on a phone; the table under the gallery has the figures."""
    return f"{index + 1}: the model's" if candidate.shift == (0, 0) else f"{index + 1}: moved {candidate.shift}"


def average_caption(found: Any) -> str:
    return "average: soft"


def crisp_story(found: Any, engine_name: str) -> str:
    """The candidates' figures as a small table, then what they show, from those figures."""
    rows = [
        f"| {candidate_caption(k, c)} | {fidelity.format_figure('lr_psnr', c.lr_psnr)} | {c.edge_energy:.2f}\u00d7 |"
        for k, c in enumerate(found.candidates)
    ]
    rows.append(
        f"| **their pixel average** | {fidelity.format_figure('lr_psnr', found.average_lr_psnr)} "
        f"| **{found.average_edge_energy:.2f}\u00d7** |"
    )
    table = "| picture | agrees with your picture (LR-PSNR) | edge contrast (\u00d7 bicubic) |\n|---|---|---|\n"
    lowest = min(c.lr_psnr for c in found.candidates)
    softest = min(c.edge_energy for c in found.candidates)
    return (
        table + "\n".join(rows) + "\n\n"
        f"**Every candidate shrinks back to your picture ({fidelity.format_figure('lr_psnr', lowest)} or better), and "
        f"so does their average; but the average has {found.average_edge_energy:.2f}\u00d7 bicubic's edge contrast "
        f"against at least {softest:.2f}\u00d7 for each candidate.** {html.escape(found.story)} (Cut from the detail "
        f"window of {html.escape(engine_name)}'s result.)"
    )


def plots_html(edge_svg: str, spectrum_svg: str, engine_name: str) -> str:
    """The two plots side by side (stacked on a phone), each with a one-line reading."""
    name = html.escape(engine_name)
    return (
        '<div class="cnaps-plots">'
        f'<figure class="cnaps-plot">{edge_svg}<figcaption>The brightness along a short line across an outline '
        f"(in the detail window): bicubic draws a ramp, {name} a step.</figcaption></figure>"
        f'<figure class="cnaps-plot">{spectrum_svg}<figcaption>How much detail each picture holds at each '
        "fineness. Right of the dashed line is finer than your picture's pixels can hold: an enlargement "
        f"cannot put anything there, so whatever {name} has there it drew itself.</figcaption></figure>"
        "</div>"
    )


def trial_note(trial: Any) -> str:
    where = ""
    if trial.box is not None:
        left, top, right, bottom = trial.box
        where = f" Cut to the {right - left}\u00d7{bottom - top} px of your picture at ({left}, {top}) with the most outlines."
    skipped = f" This draw left out: {', '.join(trial.degradation.skipped)}." if trial.degradation.skipped else ""
    chain = "\n".join(
        f"{k + 1}. round {step.round}: {html.escape(step.caption)}" for k, step in enumerate(trial.degradation.steps)
    )
    return (
        chain
        + "\n\n"
        + (
            f"**{html.escape(trial.sentence)}** {html.escape(trial.scores_line)} (PSNR: higher is closer; SSIM: 1 is "
            f"identical).{where}{skipped} Seed {trial.degradation.seed}: *New draw* damages it another way."
        )
    )


def escape(error: Exception) -> str:
    """An error's message (what went wrong and how to fix it) for the page, escaped."""
    return html.escape(str(error), quote=False)
