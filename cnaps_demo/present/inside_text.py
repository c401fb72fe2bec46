"""Words and small pictures for the "Inside the network" views, drawn from a real ``inside`` or
``attribution`` run (no gradio: the page and any other surface can use them)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PIL import Image

LAYERS_LABEL = (
    "**Step by step, input \u2192 output**: for an anime CNN each picture is one layer's most active channels "
    "(bright = responds strongly); for Stable Diffusion, one denoising step. Click one to see more of it."
)
WAITING = (
    "*Run an engine to look inside it, on your picture: an anime CNN's layers (Real-CUGAN, Real-ESRGAN), "
    "or Stable Diffusion's denoising steps.*"
)
STOPPED = "*Stopped. Run the engine again to look inside.*"
CLICK_HINT = (
    "*Click any spot of the result (left): the picture beside it then shows which pixels of your input the "
    "network used to draw it, brighter for more.*"
)
# Side of the input window the layer views run on (``cnaps_demo.inside`` takes at most 128).
INSIDE_WINDOW = 128
# The "where did it invent?" maps: a difference of 64/255 or more shows at full brightness.
MAP_GAIN = 4
# Below this side the layer views have too little to show (the network's reach is 19 px each way).
SMALLEST_SIDE = 16
# Gap between the channel pictures of one layer's strip, in pixels.
_GAP = 4


def not_for(engine_name: str) -> str:
    return (
        f"*{html.escape(engine_name)} has no layers to look into here: the layer views are for the anime CNN "
        "engines (Real-CUGAN, Real-ESRGAN), and Stable Diffusion shows its denoising steps here. A classical "
        "filter is one fixed formula, the same everywhere.*"
    )


def too_small(size: tuple[int, int]) -> str:
    return (
        f"*Your picture is {size[0]}\u00d7{size[1]} pixels: too small to look inside (at least "
        f"{SMALLEST_SIDE}\u00d7{SMALLEST_SIDE}). Try a larger picture.*"
    )


def region_around(box: tuple[int, int, int, int], size: tuple[int, int], window: int = INSIDE_WINDOW):
    """(left, top, width, height): a window of at most ``window`` px centred on ``box`` (the detail
    crops' window), kept inside a picture of ``size``."""
    width, height = min(window, size[0]), min(window, size[1])
    centre_x, centre_y = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    left = int(min(max(0, round(centre_x - width / 2)), size[0] - width))
    top = int(min(max(0, round(centre_y - height / 2)), size[1] - height))
    return left, top, width, height


def strip(maps: Sequence[Image.Image]) -> Image.Image:
    """Channel pictures side by side in a 2-column grid, with a thin gap (one picture per layer)."""
    if not maps:
        return Image.new("RGB", (8, 8), (40, 40, 48))
    width, height = maps[0].size
    columns = min(2, len(maps))
    rows = -(-len(maps) // columns)
    sheet = Image.new("RGB", (columns * width + (columns - 1) * _GAP, rows * height + (rows - 1) * _GAP), (40, 40, 48))
    for index, picture in enumerate(maps):
        x, y = (index % columns) * (width + _GAP), (index // columns) * (height + _GAP)
        sheet.paste(picture.convert("RGB").resize((width, height), Image.NEAREST), (x, y))
    return sheet


def layer_title(index: int, layer: Any) -> str:
    """The gallery's caption: short enough to fit under a thumbnail."""
    return f"{index + 1}. {layer.name.split(':')[0]}"


def layer_notes(layers: Sequence[Any]) -> str:
    """One line per layer: where it is, its real activation's shape, and what its maps respond to."""
    lines = []
    for index, layer in enumerate(layers):
        channels, height, width = layer.shape
        lines.append(
            f"{index + 1}. **{html.escape(layer.name)}**, {channels} channels at {width}\u00d7{height}: "
            f"{html.escape(layer.caption)}"
        )
    return "\n".join(lines)


def intro(seen: Any, engine_name: str) -> str:
    left, top, width, height = seen.region
    whole = f" {html.escape(seen.whole_picture_note)}" if seen.whole_picture_note else ""
    return (
        f"**{html.escape(engine_name)}**, run once more on the {width}\u00d7{height} pixels of your picture "
        f"at ({left}, {top}) (around the detail crops: move them to look elsewhere), with every layer recorded. "
        f"Each output pixel is decided by at most {seen.receptive_field}\u00d7{seen.receptive_field} input pixels "
        f"around it.{whole} Took {seen.seconds:.2f} s."
    )


def sum_note(seen: Any) -> str:
    """What the base + residual = output row shows, in sentences drawn from the arrays themselves."""
    import numpy as np

    residual = np.abs(np.asarray(seen.residual, dtype=np.float32))
    share = float((residual.max(axis=-1) > 4 / 255).mean()) * 100
    strongest = float(residual.max()) * 255
    changed = f"{share:.0f}% of the pixels change by more than 4/255 (at most {strongest:.0f}/255)"
    if share < 50:  # a residual network: most of the picture is the plain part
        story = (
            f"The network draws only the difference: {changed}; everywhere else the result is the "
            f"{html.escape(seen.base_label)}."
        )
    else:  # a cascade: the second stage reworks most of what the first one drafted
        story = (
            f"The second stage reworks the first one's draft almost everywhere: {changed}. "
            "The draft alone is not a picture to look at; the two together are."
        )
    return f"**{html.escape(seen.decomposition)}.** {story} In the middle picture {html.escape(seen.residual_legend)}."


def reading(found: Any) -> str:
    note = f" {html.escape(found.global_note)}" if getattr(found, "global_note", "") else ""
    return (
        f"**{html.escape(found.reading)}** The box marks the {found.receptive_field}\u00d7{found.receptive_field} "
        f"input pixels the network can see at all for that spot; the bright pixels are the ones it really used "
        f"(integrated gradients from a blurred copy to your picture, {found.seconds:.2f} s).{note}"
    )


def invented_note(added: Any, disagreement: Any, engine_name: str) -> str:
    """What the two maps show, with their legend, from the maps' own figures (0-255 differences)."""
    import numpy as np

    drew = float((np.asarray(added) > 16).mean()) * 100
    strays = float((np.asarray(disagreement) > 16).mean()) * 100
    name = html.escape(engine_name)
    return (
        f"**Left, drawn, not in bicubic:** where {name} drew something a plain bicubic enlargement does not have: {drew:.1f}% of the "
        f"result's pixels differ from bicubic by more than 16/255 (mostly along outlines: sharpened, not new). "
        f"**Right, not in your picture:** where the result, shrunk back to your picture's size, no longer matches your picture: "
        f"{strays:.1f}% of your pixels by more than 16/255. Bright there means your picture does not support "
        f"what the model drew: that is invention. Legend: black = the same, dark red = 16/255, yellow to white "
        f"= {256 // MAP_GAIN}/255 or more."
    )


# --- a diffusion engine: its denoising steps stand where a CNN's layers do ------------------------

DENOISING_TRACE = (
    "*Tracing a pixel back is for the anime CNNs, whose every output pixel comes from one short pass over "
    "a small neighbourhood. Stable Diffusion draws over many steps, led by a text prompt: where it guesses "
    "shows in this section's **Where is it guessing?** instead (where three seeds disagree, it invented).*"
)


def no_frames(engine_name: str) -> str:
    return (
        f"*{html.escape(engine_name)}'s denoising steps were not kept for this result: they are kept when it runs "
        "on this page, and for the bundled examples computed ahead. Run it here to watch them.*"
    )


def denoising_intro(frames: Sequence[Any], engine_name: str) -> str:
    """What the steps strip shows, from the frames' own noise levels and count."""
    first, last = frames[0], frames[-1]
    return (
        f"**{html.escape(engine_name)}** has no short stack of layers to open here; what can be watched is how it "
        f"drew. It started from the enlarged picture with noise added (noise \u03c3 {first.sigma:.2f} at step "
        f"{first.step}) and removed it over {last.total} steps; each picture is its guess of the clean picture "
        f"after that step, the last one the result. Click a step to see it larger."
    )


def step_title(frame: Any) -> str:
    return f"step {frame.step}/{frame.total}"


def denoising_notes(frames: Sequence[Any]) -> str:
    """One line per shown step: its noise level and how much the picture changed since the step before."""
    import numpy as np

    lines, previous = [], None
    for frame in frames:
        pixels = np.asarray(frame.image.convert("RGB"), dtype=np.float32)
        line = f"{step_title(frame)}: noise \u03c3 {frame.sigma:.2f}"
        if previous is not None and previous.shape == pixels.shape:
            line += f", changed {float(np.abs(pixels - previous).mean()):.1f}/255 on average since the step before"
        lines.append(line + ("" if frame.exact else " (a fast preview of the step)"))
        previous = pixels
    return "\n".join(f"- {line}" for line in lines)


# --- a diffusion engine: where is it guessing? (the same job at 3 seeds) ---------------------------

SPREAD_CAPTION = "where the seeds disagree"
SEEDS_NO_RUN = "*Upscale a picture first: the seed map is drawn for the result on screen.*"


def seeds_waiting(engine_name: str, can_run: bool) -> str:
    name = html.escape(engine_name)
    if not can_run:
        return (
            f"*No seed map was computed ahead for this result, and {name} cannot run on this server. "
            "With a GPU (or on the Space), the button here runs it.*"
        )
    return (
        f"*{name} starts from random noise. The button runs the same job twice more with other seeds (only the "
        "noise changes) and maps where the three results differ: there your picture did not decide the "
        "pixels, the noise did.*"
    )


def seeds_note(found: Any, engine_name: str, *, computed_ahead: bool) -> str:
    """What the seed map shows, from its own figures (``seed_spread.SeedSpread``)."""
    from ..seed_spread import FULL_SPREAD, VISIBLE_SPREAD

    seeds = ", ".join(str(seed) for seed in found.seeds[:-1]) + f" and {found.seeds[-1]}"
    where = " (computed ahead for this example)" if computed_ahead else ""
    return (
        f"The same job with seeds {seeds}{where}: only the random noise {html.escape(engine_name)} starts from "
        f"changes (the engine's own pictures, before the colour fix). **{found.guessing_share * 100:.1f}%** of the "
        f"pixels differ visibly between them (more than {VISIBLE_SPREAD * 255:.0f}/255), by "
        f"{found.mean:.1f}/255 on average: there the model guessed; your picture did not decide them, the noise "
        f"did. Legend: black = the three agree, purple to orange = they differ, pale yellow = by "
        f"{FULL_SPREAD * 255:.0f}/255 or more."
    )
