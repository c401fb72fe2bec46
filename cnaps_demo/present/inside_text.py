"""Words and small pictures for the "Inside the network" views, drawn from a real ``inside`` or
``attribution`` run (no gradio: the page and any other surface can use them)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from PIL import Image

LAYERS_LABEL = (
    "**Layer by layer, input \u2192 output**: each picture is one layer's most active channels (bright = "
    "responds strongly). Click a layer to see more of its channels."
)
WAITING = "*Run one of the anime CNN engines (Real-CUGAN or Real-ESRGAN) to look inside it, on your picture.*"
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
        "engines (Real-CUGAN, Real-ESRGAN). A classical filter is one fixed formula; for Stable Diffusion, "
        "see its denoising steps above.*"
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
