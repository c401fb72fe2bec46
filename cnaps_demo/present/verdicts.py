"""The fidelity figures under the slider, in words a newcomer can judge: one line of verdicts on
stated scales, the details (bicubic's figures, what each means, the scale) folded behind it, and a
warning first when the picture itself is too soft to judge a sharper result by (no gradio)."""

from __future__ import annotations

import html
from typing import Any

from .. import fidelity

ORDER = ("psnr", "ssim", "lr_psnr", "sharpness", "colour_shift")
SOFT_INPUT_NOTE = (
    "Your picture itself is soft (little detail near its finest scale). A model that sharpens it must then "
    "differ from it when shrunk back: here a lower LR-PSNR means *sharpened*, not *wrong*."
)
WHY_SENTENCE = (
    "Why is it crisp? The anime models were trained to undo blur, resizing, noise and JPEG on anime art, and "
    "to commit to one crisp answer instead of a blurry average. See it on your picture: "
    "[inside the network](#cnaps-inside), [why it is crisp](#cnaps-learned)."
)


def _name(metric: str) -> str:
    return fidelity.METRIC_LABELS[metric].split(" (")[0]


def fidelity_summary(
    ours: dict[str, Any], plain: dict[str, Any], *, against: str, input_soft: bool = False, truth_soft: bool = False
) -> str:
    """Markdown: a soft-picture warning where it applies, one line with a verdict per figure, and a
    fold with each figure beside bicubic's, what it means and its scale."""
    names = [name for name in ORDER if name in ours]
    verdicts = {name: fidelity.verdict(name, ours[name], truth_soft=truth_soft) for name in names}
    line = " \u00b7 ".join(
        f"{_name(name)} {fidelity.format_figure(name, ours[name])}: **{verdicts[name][0]}**" for name in names
    )
    details = "".join(
        f"<li><b>{html.escape(_name(name))}: {fidelity.format_figure(name, ours[name])}</b> "
        f"(bicubic {fidelity.format_figure(name, plain[name])}): {html.escape(verdicts[name][1])} "
        f"{html.escape(fidelity.METRIC_HELP[name])} <i>Scale: {html.escape(fidelity.scale_text(name))}.</i></li>"
        for name in names
    )
    warnings = []
    if input_soft:
        warnings.append(f"\u26a0 {SOFT_INPUT_NOTE}")
    if truth_soft:
        warnings.append(f"\u26a0 {html.escape(fidelity.SOFT_TRUTH_NOTE)}")
    head = "\n\n".join(warnings)
    body = (
        f"**How faithful is it to {html.escape(against)}?** {line}\n\n"
        f'<details class="cnaps-figures"><summary>What these figures mean, against bicubic</summary>'
        f"<ul>{details}</ul></details>"
    )
    return f"{head}\n\n{body}" if head else body
