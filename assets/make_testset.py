"""Draw the evaluation set (our own drawings, CC0) and its degraded inputs, bit-identically.

    python assets/make_testset.py             # writes cnaps_demo/testset/{truth,input}/*.png

Six anime-style 1024x1024 illustrations, drawn at 4x and area-averaged down (clean
anti-aliased edges, no ringing): outlines of varying width, flat fills, cel shading, hair
strands, eyes with highlights, a speech bubble with lettering, screentone dots and gradient
skies. Each truth gets the degraded input an upload usually is (``evaluate.degrade``: 2x
smaller by area averaging, a mild blur, JPEG at quality 75, decoded back and stored as PNG so
the evaluation never depends on a JPEG decoder). Every random choice comes from a seeded
``random.Random``, and the PNGs carry no time stamps, so the same Pillow writes the same bytes.
"""

from __future__ import annotations

import math
import random
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "cnaps_demo" / "testset"  # package data, so `evaluate` finds it in a wheel too
SIZE = 1024
SS = 4  # supersampling factor
INK = (34, 24, 44)
WHITE = (255, 255, 255)
Point = tuple[float, float]


class Canvas:
    """Masks and fills in output-pixel coordinates on a canvas ``SS`` times larger."""

    def __init__(self, background) -> None:
        self.image = Image.new("RGB", (SIZE * SS, SIZE * SS), background)

    def _mask(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        mask = Image.new("L", self.image.size, 0)
        return mask, ImageDraw.Draw(mask)

    def ellipse(self, box) -> Image.Image:
        mask, draw = self._mask()
        draw.ellipse([v * SS for v in box], fill=255)
        return mask

    def polygon(self, points) -> Image.Image:
        mask, draw = self._mask()
        draw.polygon([(x * SS, y * SS) for x, y in points], fill=255)
        return mask

    def stroke(self, points, w0: float, w1: float | None = None) -> Image.Image:
        """A polyline whose width goes from ``w0`` to ``w1`` (a tapered ink stroke), round ends."""
        mask, draw = self._mask()
        w1 = w0 if w1 is None else w1
        n = max(1, len(points) - 1)
        for i, (a, b) in enumerate(zip(points, points[1:])):
            w = (w0 + (w1 - w0) * (i + 0.5) / n) * SS
            draw.line([(a[0] * SS, a[1] * SS), (b[0] * SS, b[1] * SS)], fill=255, width=max(1, round(w)))
            r = w / 2
            draw.ellipse((b[0] * SS - r, b[1] * SS - r, b[0] * SS + r, b[1] * SS + r), fill=255)
        r = w0 * SS / 2
        draw.ellipse((points[0][0] * SS - r, points[0][1] * SS - r, points[0][0] * SS + r, points[0][1] * SS + r), fill=255)
        return mask

    def ring(self, box, width: float) -> Image.Image:
        outer = self.ellipse(box)
        inner = self.ellipse((box[0] + width, box[1] + width, box[2] - width, box[3] - width))
        return ImageChops.subtract(outer, inner)

    def boxes(self, colour, boxes, round_: bool = False) -> None:
        """Flat rectangles (or ellipses) drawn straight onto the picture: many small shapes, no masks."""
        draw = ImageDraw.Draw(self.image)
        for box in boxes:
            (draw.ellipse if round_ else draw.rectangle)([v * SS for v in box], fill=colour)

    def fill(self, colour, *masks: Image.Image) -> None:
        mask = masks[0]
        for other in masks[1:]:
            mask = ImageChops.multiply(mask, other)
        box = mask.getbbox()
        if box:  # blend only where the mask is: a full-canvas paste costs a quarter second
            self.image.paste(colour, box, mask.crop(box))

    def gradient(self, top, bottom, mask: Image.Image | None = None) -> None:
        ramp = np.linspace(0.0, 1.0, self.image.height, dtype=np.float32)[:, None, None]
        rgb = np.asarray(top, np.float32) * (1 - ramp) + np.asarray(bottom, np.float32) * ramp
        layer = Image.fromarray(np.broadcast_to(rgb, (self.image.height, self.image.width, 3)).round().astype(np.uint8))
        self.image.paste(layer, (0, 0), mask)

    def screentone(self, colour, spacing: float, radius: float, mask: Image.Image) -> None:
        """Halftone dots on a 45-degree grid, only inside ``mask``."""
        dots, draw = self._mask()
        step, r = spacing * SS, radius * SS
        for row in range(int(SIZE * SS / step) + 2):
            offset = step / 2 if row % 2 else 0.0
            for col in range(int(SIZE * SS / step) + 2):
                x, y = col * step + offset, row * step
                draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
        self.fill(colour, dots, mask)

    def text(self, xy: Point, words: str, size: int, colour=INK) -> None:
        font = ImageFont.load_default(size=size * SS)
        ImageDraw.Draw(self.image).text((xy[0] * SS, xy[1] * SS), words, fill=colour, font=font, anchor="mm")

    def finish(self) -> Image.Image:
        return self.image.resize((SIZE, SIZE), Image.Resampling.BOX)


def bezier(p0: Point, p1: Point, p2: Point, p3: Point, n: int = 24) -> list[Point]:
    out = []
    for i in range(n + 1):
        t = i / n
        a, b, c, d = (1 - t) ** 3, 3 * t * (1 - t) ** 2, 3 * t * t * (1 - t), t**3
        out.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return out


def outline(c: Canvas, mask: Image.Image, width: float) -> None:
    """Ink around a filled shape: the mask grown by about ``width`` minus the mask itself.

    Growing by a blur and a threshold is fast at 4x (a max filter is not): a blurred straight
    edge falls to 8/255 at 1.86 sigma, so sigma = width / 1.86 grows it by ``width``.
    """
    grown = mask.filter(ImageFilter.GaussianBlur(width * SS / 1.86)).point(lambda v: 255 if v >= 8 else 0)
    c.fill(INK, ImageChops.subtract(grown, mask))


def eye(c: Canvas, cx: float, cy: float, w: float, h: float, iris, rng: random.Random) -> None:
    """An anime eye: white, iris with a darker top (cel shade), pupil, two highlights, lashes."""
    white = c.ellipse((cx - w, cy - h, cx + w, cy + h))
    c.fill(WHITE, white)
    iris_box = (cx - w * 0.62, cy - h * 0.95, cx + w * 0.62, cy + h * 0.95)
    iris_mask = ImageChops.multiply(c.ellipse(iris_box), white)
    c.fill(iris, iris_mask)
    c.fill(tuple(int(v * 0.55) for v in iris), iris_mask, c.polygon([(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy - h * 0.1), (cx - w, cy - h * 0.35)]))
    c.fill(INK, c.ellipse((cx - w * 0.26, cy - h * 0.4, cx + w * 0.26, cy + h * 0.4)), white)
    c.fill(WHITE, c.ellipse((cx - w * 0.45, cy - h * 0.62, cx - w * 0.05, cy - h * 0.12)))
    c.fill(WHITE, c.ellipse((cx + w * 0.18, cy + h * 0.3, cx + w * 0.38, cy + h * 0.55)))
    c.fill(INK, c.ring(iris_box, 2.0), white)
    c.fill(INK, c.stroke(bezier((cx - w * 1.15, cy - h * 0.5), (cx - w * 0.4, cy - h * 1.35), (cx + w * 0.5, cy - h * 1.3), (cx + w * 1.15, cy - h * 0.7)), 3.0, 9.0))
    for k in range(3):  # lashes at the outer corner
        x0 = cx + w * (0.8 + 0.12 * k)
        c.fill(INK, c.stroke([(x0, cy - h * (0.8 - 0.1 * k)), (x0 + 18 + rng.uniform(0, 6), cy - h * (1.05 - 0.12 * k))], 4.0, 1.0))
    c.fill(INK, c.stroke(bezier((cx - w * 0.7, cy + h * 1.05), (cx - w * 0.2, cy + h * 1.25), (cx + w * 0.3, cy + h * 1.2), (cx + w * 0.8, cy + h * 0.95)), 1.5, 3.0))


def hair_strands(c: Canvas, rng: random.Random, box, count: int, colour, shade) -> None:
    """Flowing tapered strands: the fine, dense lines upscalers blur or break first."""
    left, top, right, bottom = box
    for i in range(count):
        x = left + (right - left) * (i + rng.random()) / count
        sway = rng.uniform(-60, 60)
        pts = bezier((x, top), (x + sway, top + (bottom - top) * 0.35), (x - sway, top + (bottom - top) * 0.7), (x + sway * 0.5, bottom - rng.uniform(0, 80)))
        c.fill(shade if i % 3 == 0 else colour, c.stroke(pts, rng.uniform(10, 22), 2.0))
        c.fill(INK, c.stroke(pts, rng.uniform(1.2, 2.8), 0.8))


def bubble(c: Canvas, box, tail: Point, lines: list[str], size: int) -> None:
    """A speech bubble with a tail and centred lettering."""
    left, top, right, bottom = box
    cx, cy = (left + right) / 2, (top + bottom) / 2
    shape = ImageChops.lighter(c.ellipse(box), c.polygon([(cx - 40, cy + 10), (cx + 30, cy + 20), tail]))
    c.fill(WHITE, shape)
    outline(c, shape, 5)
    for i, words in enumerate(lines):
        c.text((cx, cy + (i - (len(lines) - 1) / 2) * size * 1.25), words, size)


def face(c: Canvas, rng: random.Random, cx: float, cy: float, r: float, hair, iris) -> None:
    """A girl's face: cel-shaded skin, hair with strands, two eyes, mouth, blush."""
    skin, shadow = (253, 226, 208), (238, 190, 176)
    hair_shade = tuple(int(v * 0.7) for v in hair)
    back = c.ellipse((cx - r * 1.25, cy - r * 1.3, cx + r * 1.25, cy + r * 1.1))
    c.fill(hair, back)
    hair_strands(c, rng, (cx - r * 1.3, cy - r * 0.2, cx + r * 1.3, cy + r * 2.2), 26, hair, hair_shade)
    head = c.ellipse((cx - r, cy - r * 0.95, cx + r, cy + r * 1.05))
    chin = c.polygon([(cx - r * 0.95, cy + r * 0.2), (cx + r * 0.95, cy + r * 0.2), (cx, cy + r * 1.3)])
    skin_mask = ImageChops.lighter(head, chin)
    c.fill(skin, skin_mask)
    c.fill(shadow, skin_mask, c.polygon([(cx + r * 0.35, cy - r), (cx + r * 1.2, cy - r), (cx + r * 1.2, cy + r * 1.4), (cx + r * 0.1, cy + r * 1.4)]))
    outline(c, skin_mask, 4)
    for side in (-1, 1):
        eye(c, cx + side * r * 0.42, cy + r * 0.18, r * 0.24, r * 0.3, iris, rng)
        c.fill((247, 160, 170), c.ellipse((cx + side * r * 0.55 - 28, cy + r * 0.62 - 10, cx + side * r * 0.55 + 28, cy + r * 0.62 + 10)))
    c.fill(INK, c.stroke(bezier((cx - r * 0.12, cy + r * 0.78), (cx - r * 0.04, cy + r * 0.86), (cx + r * 0.06, cy + r * 0.86), (cx + r * 0.14, cy + r * 0.76)), 2.5, 4.0))
    fringe = c.polygon([(cx - r * 1.1, cy - r * 0.2), (cx - r * 0.9, cy - r * 1.15), (cx + r * 0.9, cy - r * 1.15), (cx + r * 1.12, cy - r * 0.1),
                        (cx + r * 0.75, cy - r * 0.35), (cx + r * 0.55, cy - r * 0.05), (cx + r * 0.3, cy - r * 0.42), (cx, cy - r * 0.08),
                        (cx - r * 0.28, cy - r * 0.45), (cx - r * 0.6, cy - r * 0.02), (cx - r * 0.8, cy - r * 0.4)])
    fringe = ImageChops.multiply(fringe, c.ellipse((cx - r * 1.12, cy - r * 1.22, cx + r * 1.12, cy + r * 1.0)))  # round crown
    c.fill(hair, fringe)
    c.fill(hair_shade, fringe, c.polygon([(cx - r * 1.2, cy - r * 0.6), (cx + r * 1.2, cy - r * 0.6), (cx + r * 1.2, cy), (cx - r * 1.2, cy)]))
    c.fill((255, 255, 255), fringe, c.stroke(bezier((cx - r * 0.7, cy - r * 0.85), (cx - r * 0.3, cy - r * 0.98), (cx + r * 0.3, cy - r * 0.98), (cx + r * 0.7, cy - r * 0.85)), 7, 7))
    outline(c, fringe, 3.5)
    hair_strands(c, rng, (cx - r * 0.8, cy - r * 1.1, cx + r * 0.8, cy - r * 0.35), 10, hair, hair_shade)


def cloud(c: Canvas, cx: float, cy: float, s: float) -> None:
    puffs = [(-1.0, 0.1, 0.55), (-0.4, -0.3, 0.7), (0.35, -0.2, 0.65), (0.95, 0.15, 0.5), (0.0, 0.25, 0.6)]
    mask = c.ellipse((cx - s, cy, cx + s, cy + s * 0.4))
    for dx, dy, r in puffs:
        mask = ImageChops.lighter(mask, c.ellipse((cx + dx * s - r * s, cy + dy * s - r * s, cx + dx * s + r * s, cy + dy * s + r * s)))
    c.fill(WHITE, mask)
    c.fill((214, 222, 246), mask, c.polygon([(cx - 2 * s, cy + s * 0.15), (cx + 2 * s, cy + s * 0.05), (cx + 2 * s, cy + s), (cx - 2 * s, cy + s)]))
    outline(c, mask, 2.5)


def scene_portrait_sky(rng: random.Random) -> Image.Image:
    c = Canvas(WHITE)
    c.gradient((92, 150, 236), (255, 214, 186))
    cloud(c, 190, 170, 120)
    cloud(c, 840, 300, 90)
    face(c, rng, 512, 520, 300, (120, 72, 160), (70, 150, 220))
    return c.finish()


def scene_speech_bubble(rng: random.Random) -> Image.Image:
    c = Canvas((255, 238, 244))
    c.screentone((244, 150, 186), 14, 3.2, c.polygon([(0, 0), (SIZE, 0), (SIZE, SIZE), (0, SIZE)]))
    c.screentone((200, 90, 140), 9, 1.6, c.ellipse((520, 500, 1200, 1200)))
    face(c, rng, 330, 640, 220, (250, 204, 90), (200, 90, 60))
    bubble(c, (470, 60, 980, 420), (520, 520), ["WAIT FOR ME,", "SENPAI!", "I brought lunch..."], 46)
    c.text((820, 930), "doki doki", 64, (150, 30, 80))
    return c.finish()


def scene_manga_panel(rng: random.Random) -> Image.Image:
    c = Canvas(WHITE)
    grey, dark = (200, 200, 200), (110, 110, 110)
    full = c.polygon([(0, 0), (SIZE, 0), (SIZE, SIZE), (0, SIZE)])
    for i in range(90):  # speed lines converging on the eye
        a = 2 * math.pi * i / 90 + rng.uniform(-0.02, 0.02)
        r0 = rng.uniform(330, 420)
        c.fill(INK, c.stroke([(512 + math.cos(a) * 760, 600 + math.sin(a) * 760), (512 + math.cos(a) * r0, 600 + math.sin(a) * r0)], rng.uniform(3, 9), 0.6))
    c.screentone(grey, 10, 2.6, c.polygon([(0, 700), (SIZE, 820), (SIZE, SIZE), (0, SIZE)]))
    c.screentone(dark, 7, 1.4, c.polygon([(0, 900), (SIZE, 960), (SIZE, SIZE), (0, SIZE)]))
    eye(c, 512, 600, 250, 170, (90, 90, 90), rng)
    for x0, y0, x1, y1, w in ((16, 16, 1008, 1008, 10), (16, 16, 1008, 300, 6)):  # panel borders
        frame = c.polygon([(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
        c.fill(INK, ImageChops.subtract(frame, c.polygon([(x0 + w, y0 + w), (x1 - w, y0 + w), (x1 - w, y1 - w), (x0 + w, y1 - w)])))
    c.fill(WHITE, c.polygon([(26, 26), (998, 26), (998, 290), (26, 290)]))
    c.screentone(grey, 12, 2.0, c.polygon([(26, 200), (998, 150), (998, 290), (26, 290)]))
    bubble(c, (560, 40, 960, 270), (640, 330), ["!?", "Who's there?"], 50)
    c.text((260, 150), "ZAWA", 96, INK)
    del full
    return c.finish()


def scene_mascot(rng: random.Random) -> Image.Image:
    c = Canvas(WHITE)
    c.gradient((255, 160, 120), (120, 60, 160))
    for _ in range(40):
        x, y, s = rng.uniform(0, SIZE), rng.uniform(0, 380), rng.uniform(3, 9)
        c.fill((255, 246, 200), c.polygon([(x, y - s * 2), (x + s * 0.5, y - s * 0.5), (x + s * 2, y), (x + s * 0.5, y + s * 0.5), (x, y + s * 2), (x - s * 0.5, y + s * 0.5), (x - s * 2, y), (x - s * 0.5, y - s * 0.5)]))
    fur, shade = (250, 250, 246), (200, 205, 226)
    body = c.ellipse((300, 560, 724, 980))
    head = c.ellipse((250, 260, 774, 700))
    ears = ImageChops.lighter(c.polygon([(290, 400), (330, 170), (470, 290)]), c.polygon([(734, 400), (694, 170), (554, 290)]))
    shape = ImageChops.lighter(ImageChops.lighter(body, head), ears)
    c.fill(fur, shape)
    c.fill(shade, shape, c.polygon([(560, 200), (900, 200), (900, 1024), (600, 1024), (700, 600)]))
    c.fill((250, 170, 190), c.polygon([(320, 370), (342, 230), (430, 300)]))
    c.fill((250, 170, 190), c.polygon([(704, 370), (682, 230), (594, 300)]))
    outline(c, shape, 9)
    c.fill(INK, c.stroke(bezier((380, 700), (450, 720), (574, 720), (644, 700)), 7, 7))
    for side in (-1, 1):
        eye(c, 512 + side * 120, 470, 60, 72, (60, 170, 110), rng)
        for k in range(3):  # whiskers of falling width
            c.fill(INK, c.stroke([(512 + side * 190, 560 + k * 22), (512 + side * 330, 540 + k * 40)], 5 - k * 1.5, 1.0))
    c.fill((240, 110, 130), c.polygon([(490, 540), (534, 540), (512, 565)]))
    c.fill(INK, c.stroke(bezier((512, 565), (505, 600), (470, 605), (455, 585)), 3.5, 2))
    c.fill(INK, c.stroke(bezier((512, 565), (519, 600), (554, 605), (569, 585)), 3.5, 2))
    bell = c.ellipse((482, 700, 542, 760))
    c.fill((250, 200, 60), bell)
    c.fill((210, 150, 30), bell, c.polygon([(482, 735), (542, 735), (542, 760), (482, 760)]))
    outline(c, bell, 3)
    return c.finish()


def scene_night_city(rng: random.Random) -> Image.Image:
    c = Canvas(WHITE)
    c.gradient((18, 20, 64), (120, 70, 150))
    stars = [(rng.uniform(0, SIZE), rng.uniform(0, 600), rng.uniform(0.6, 2.4)) for _ in range(160)]
    c.boxes((255, 250, 220), [(x - r, y - r, x + r, y + r) for x, y, r in stars], round_=True)
    moon = c.ellipse((700, 90, 900, 290))
    c.fill((255, 240, 190), moon)
    c.fill((230, 200, 140), moon, c.ellipse((740, 70, 960, 290)))
    outline(c, moon, 2)
    x = 0.0
    while x < SIZE:
        w, h = rng.uniform(70, 160), rng.uniform(220, 560)
        building = c.polygon([(x, SIZE - h), (x + w, SIZE - h), (x + w, SIZE), (x, SIZE)])
        c.fill((40, 36, 80), building)
        c.fill((28, 26, 60), building, c.polygon([(x + w * 0.7, 0), (x + w, 0), (x + w, SIZE), (x + w * 0.7, SIZE)]))
        rows, cols = range(int(SIZE - h + 20), SIZE - 20, 34), range(int(x + 12), int(x + w - 20), 26)
        lit = [(wx, wy, wx + 12, wy + 16) for wy in rows for wx in cols if rng.random() < 0.45]
        c.boxes((255, 214, 110), lit)
        outline(c, building, 2.5)
        x += w + rng.uniform(4, 30)
    hair_strands(c, rng, (60, 80, 400, 640), 30, (70, 60, 130), (150, 120, 210))
    return c.finish()


def scene_line_chart(rng: random.Random) -> Image.Image:
    """A drawing-style test chart: strokes 1 to 12 px wide, rings, flat patches, small lettering."""
    c = Canvas((250, 246, 236))
    for i in range(12):
        w = 1 + i
        c.fill(INK, c.stroke(bezier((40, 60 + i * 38), (300, 20 + i * 38), (500, 100 + i * 38), (980, 60 + i * 38)), w, max(1.0, w / 3)))
    for k, colour in enumerate([(230, 80, 90), (250, 180, 60), (90, 180, 120), (70, 120, 220), (160, 90, 200)]):
        patch = c.polygon([(40 + k * 190, 520), (200 + k * 190, 520), (200 + k * 190, 640), (40 + k * 190, 640)])
        c.fill(colour, patch)
        c.fill(tuple(int(v * 0.72) for v in colour), patch, c.polygon([(40 + k * 190, 600), (200 + k * 190, 580), (200 + k * 190, 640), (40 + k * 190, 640)]))
        outline(c, patch, 1 + k)
    for j in range(8):
        r = 30 + j * 24
        c.fill(INK, c.ring((260 - r, 850 - r, 260 + r, 850 + r), 1 + j * 0.7))
    for s, size in enumerate((14, 18, 24, 32, 44)):
        c.text((730, 680 + s * 48), f"Lettering {size}px: Ohayo!", size)
    hair_strands(c, rng, (490, 920, 1010, 1030), 24, (240, 140, 160), (180, 80, 110))
    return c.finish()


SCENES = {
    "portrait_sky": scene_portrait_sky,
    "speech_bubble": scene_speech_bubble,
    "manga_panel": scene_manga_panel,
    "mascot": scene_mascot,
    "night_city": scene_night_city,
    "line_chart": scene_line_chart,
}


LICENSE = """# The evaluation set

`truth/` holds illustrations drawn by this project with `assets/make_testset.py`; `input/` holds
each one 2x smaller (area average), blurred (radius 0.5) and saved as JPEG quality 75, decoded
back to PNG. Our own work, dedicated to the public domain (CC0 1.0,
<https://creativecommons.org/publicdomain/zero/1.0/>). Redraw with `python assets/make_testset.py`.
"""


def draw(name: str) -> Image.Image:
    """One truth picture, from its own seed (so scenes do not depend on each other's order)."""
    return SCENES[name](random.Random(f"cnaps-testset/{name}"))


def write(out_dir: Path = OUT_DIR, names: list[str] | None = None) -> list[Path]:
    sys.path.insert(0, str(ROOT))
    from cnaps_demo.evaluate import degrade

    written = []
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "LICENSE.md").write_text(LICENSE, encoding="utf-8")
    for name in names or list(SCENES):
        truth = draw(name)
        for kind, picture in (("truth", truth), ("input", degrade(truth))):
            path = out_dir / kind / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            picture.save(path, format="PNG", optimize=True)
            written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1]) if len(sys.argv) > 1 else OUT_DIR):
        print(written_path.relative_to(ROOT) if written_path.is_relative_to(ROOT) else written_path)
