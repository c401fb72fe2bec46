"""Draw the bundled example illustrations (CC0, made by this project) with Pillow.

    python assets/make_examples.py            # writes cnaps_demo/examples/*.png

Each picture is drawn at 4x and reduced with a Lanczos filter, so it has the clean,
anti-aliased outlines and flat cel-shaded colours of digital anime-style art: exactly what
upscalers are judged on. Two more are degraded copies (shrunk, blurred, JPEG quality 40-45),
the soft low-resolution pictures where a learned upscaler visibly beats bicubic. The output is
deterministic (no randomness without a fixed seed): running it again gives the same bytes.
"""

from __future__ import annotations

import io
import itertools
import math
import random
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE.parent / "cnaps_demo" / "examples"  # package data: a wheel ships them
SS = 4  # supersampling factor

INK = (38, 26, 44)  # outline colour: a very dark purple, not pure black
WHITE = (255, 255, 255)


class Pen:
    """Draw in output-pixel coordinates on a canvas SS times larger."""

    def __init__(self, size: tuple[int, int], background, mode: str = "RGB") -> None:
        self.size = size
        self.image = Image.new(mode, (size[0] * SS, size[1] * SS), background)
        self.draw = ImageDraw.Draw(self.image)

    @staticmethod
    def _p(points):
        return [(x * SS, y * SS) for x, y in points]

    @staticmethod
    def _b(box):
        return [v * SS for v in box]

    def ellipse(self, box, fill=None, outline=INK, width=3.0):
        self.draw.ellipse(self._b(box), fill=fill, outline=outline, width=int(width * SS) if outline else 0)

    def polygon(self, points, fill=None, outline=INK, width=3.0):
        pts = self._p(points)
        self.draw.polygon(pts, fill=fill)
        if outline:
            self.draw.line(pts + [pts[0]], fill=outline, width=int(width * SS), joint="curve")
            for x, y in pts:  # round the corners of the outline
                r = width * SS / 2
                self.draw.ellipse((x - r, y - r, x + r, y + r), fill=outline)

    def line(self, points, fill=INK, width=3.0, round_caps=True):
        pts = self._p(points)
        self.draw.line(pts, fill=fill, width=int(width * SS), joint="curve")
        if round_caps:
            r = width * SS / 2
            for x, y in (pts[0], pts[-1]):
                self.draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    def arc(self, box, start, end, fill=INK, width=3.0):
        self.draw.arc(self._b(box), start, end, fill=fill, width=int(width * SS))

    def chord(self, box, start, end, fill, outline=None, width=0):
        self.draw.chord(self._b(box), start, end, fill=fill, outline=outline, width=int(width * SS))

    def rect(self, box, fill, outline=None, width=0, radius=0):
        self.draw.rounded_rectangle(self._b(box), radius=radius * SS, fill=fill, outline=outline, width=int(width * SS))

    def polygon_in_ellipse(self, points, ellipse_box, fill):
        """Fill ``points`` only where it overlaps the ellipse ``ellipse_box`` (a clip mask)."""
        clip = Image.new("L", self.image.size, 0)
        ImageDraw.Draw(clip).ellipse(self._b(ellipse_box), fill=255)
        shape = Image.new("L", self.image.size, 0)
        ImageDraw.Draw(shape).polygon(self._p(points), fill=255)
        self.image.paste(fill, (0, 0), ImageChops.multiply(clip, shape))

    def finish(self) -> Image.Image:
        return self.image.resize(self.size, Image.Resampling.LANCZOS)


def curve(p0, p1, p2, n: int = 24):
    """Quadratic Bezier points from p0 to p2 pulled towards p1."""
    pts = []
    for i in range(n + 1):
        t = i / n
        x = (1 - t) ** 2 * p0[0] + 2 * (1 - t) * t * p1[0] + t**2 * p2[0]
        y = (1 - t) ** 2 * p0[1] + 2 * (1 - t) * t * p1[1] + t**2 * p2[1]
        pts.append((x, y))
    return pts


def star_points(cx, cy, outer, inner, rotation=-90.0, points=5):
    pts = []
    for i in range(points * 2):
        r = outer if i % 2 == 0 else inner
        a = math.radians(rotation + i * 180.0 / points)
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def lock(x0, x1, top, tip, bend=0.0):
    """A pointed hair lock hanging from [x0, x1] at ``top`` to a tip at ``tip`` (x, y)."""
    left = curve((x0, top), ((x0 + tip[0]) / 2 - bend, (top + tip[1]) / 2), tip, 12)
    right = curve(tip, ((x1 + tip[0]) / 2 - bend, (top + tip[1]) / 2), (x1, top), 12)
    return left + right[1:]


# --- 1. chibi face -------------------------------------------------------------


CHIBI_HAIR, CHIBI_HAIR_DARK, CHIBI_HAIR_LIGHT = (104, 72, 158), (74, 48, 120), (150, 122, 205)
CHIBI_SKIN, CHIBI_SKIN_SHADOW = (255, 228, 210), (243, 190, 178)


def chibi_face() -> Image.Image:
    pen = Pen((384, 384), (255, 231, 238))
    # Back to front: each step paints over the ones before it.
    for step in (_chibi_background, _chibi_body, _chibi_face, _chibi_fringe, _chibi_eyes, _chibi_details):
        step(pen)
    return pen.finish()


def _chibi_background(pen: Pen) -> None:
    hair_dark = CHIBI_HAIR_DARK
    # background: polka dots and two sparkles
    for y in range(-10, 400, 48):
        for x in range(-10 + (y // 48 % 2) * 24, 400, 48):
            pen.ellipse((x - 6, y - 6, x + 6, y + 6), fill=(255, 214, 226), outline=None)
    for cx, cy, r in ((40, 60, 16), (342, 92, 12), (330, 300, 10)):
        pen.polygon(
            star_points(cx, cy, r, r * 0.35, points=4, rotation=-90), fill=(255, 250, 220), outline=INK, width=2
        )

    # back hair
    pen.polygon(
        curve((70, 330), (40, 180), (110, 80))
        + curve((110, 80), (192, 10), (274, 80))[1:]
        + curve((274, 80), (344, 180), (314, 330))[1:]
        + [(270, 300), (114, 300)],
        fill=hair_dark,
        outline=INK,
        width=3.5,
    )


def _chibi_body(pen: Pen) -> None:
    # body: sailor uniform
    pen.polygon([(96, 384), (120, 318), (264, 318), (288, 384)], fill=(250, 250, 252), outline=INK, width=3.5)
    pen.polygon([(120, 318), (192, 372), (264, 318), (248, 384), (136, 384)], fill=(58, 86, 170), outline=INK, width=3)
    pen.line([(132, 340), (192, 384), (252, 340)], fill=WHITE, width=2.5)
    pen.polygon([(176, 352), (208, 352), (218, 384), (166, 384)], fill=(226, 58, 84), outline=INK, width=3)
    # neck
    pen.rect((172, 282, 212, 326), fill=CHIBI_SKIN_SHADOW, outline=INK, width=3, radius=6)


def _chibi_face(pen: Pen) -> None:
    skin, skin_shadow = CHIBI_SKIN, CHIBI_SKIN_SHADOW
    # face
    face = (88, 92, 296, 304)
    pen.ellipse(face, fill=skin, outline=INK, width=4)
    # cel shadow under the fringe (clipped to the face)
    pen.polygon_in_ellipse(
        curve((80, 200), (192, 250), (304, 200), 20) + [(304, 80), (80, 80)], (92, 96, 292, 300), skin_shadow
    )


def _chibi_fringe(pen: Pen) -> None:
    hair, hair_dark, hair_light = CHIBI_HAIR, CHIBI_HAIR_DARK, CHIBI_HAIR_LIGHT
    # fringe: one shape whose lower edge is a row of pointed locks
    top_arc = curve((60, 230), (192, -120), (324, 230), 30)
    # (notch, tip) pairs from right to left; each lock is two gently curved edges
    zigzag = [
        (306, 216),
        (290, 152),
        (282, 210),
        (266, 146),
        (248, 180),
        (228, 148),
        (192, 214),
        (158, 148),
        (138, 180),
        (118, 146),
        (102, 210),
        (94, 152),
        (78, 216),
    ]
    edge = [zigzag[0]]
    for a, b in itertools.pairwise(zigzag):
        mid = ((a[0] + b[0]) / 2 + (3 if b[1] > a[1] else -3), (a[1] + b[1]) / 2)
        edge += curve(a, mid, b, 8)[1:]
    pen.polygon(top_arc + edge[1:-1], fill=hair, outline=None)
    pen.line(edge, width=3.5)
    # side locks, over the fringe's ends
    for side_lock in (lock(80, 118, 124, (92, 318), bend=-10), lock(266, 304, 124, (292, 318), bend=10)):
        pen.polygon(side_lock, fill=hair, outline=None)
        pen.line(side_lock, width=3.5)  # outline the two long edges, not the hidden top
    # hair shine band and strands
    pen.polygon(
        curve((120, 84), (192, 56), (264, 84), 16) + curve((254, 98), (192, 74), (130, 98), 16),
        fill=hair_light,
        outline=None,
    )
    for x in (124, 156, 228, 258):
        pen.line(
            curve(
                (x, 70 + abs(192 - x) * 0.25), (x + (6 if x > 192 else -6), 110), (x + (4 if x > 192 else -4), 138), 10
            ),
            fill=hair_dark,
            width=2,
        )


def _chibi_eyes(pen: Pen) -> None:
    for cx, flip in ((142, 1), (242, -1)):
        pen.ellipse((cx - 30, 188, cx + 30, 262), fill=WHITE, outline=INK, width=3)
        pen.ellipse((cx - 24, 194, cx + 24, 262), fill=(70, 150, 214), outline=INK, width=2.5)
        pen.chord((cx - 24, 194, cx + 24, 262), 180, 360, fill=(38, 92, 160))
        pen.ellipse((cx - 12, 212, cx + 12, 244), fill=(22, 30, 60), outline=None)
        pen.ellipse((cx - 20, 238, cx + 20, 260), fill=(124, 206, 240), outline=None)
        pen.ellipse((cx - 12 - 6 * flip, 204, cx + 2 - 6 * flip, 220), fill=WHITE, outline=None)
        pen.ellipse((cx + 8 - 4 * flip, 232, cx + 14 - 4 * flip, 238), fill=WHITE, outline=None)
        # upper lash line and a flick
        pen.line(curve((cx - 34, 200), (cx, 176), (cx + 34, 200), 16), width=7)
        flick_x = cx + 34 * flip
        pen.line([(flick_x, 200), (flick_x + 10 * flip, 192)], width=4)
        # eyebrow
        pen.line(curve((cx - 22, 170), (cx, 160), (cx + 22, 168), 10), width=3)


def _chibi_details(pen: Pen) -> None:
    # blush with hatching
    for cx in (118, 266):
        pen.ellipse((cx - 22, 258, cx + 22, 276), fill=(255, 170, 180), outline=None)
        for dx in (-10, 0, 10):
            pen.line([(cx + dx - 3, 272), (cx + dx + 4, 262)], fill=(226, 96, 120), width=2)

    # nose and mouth
    pen.line([(192, 262), (190, 266)], width=2.5)
    pen.polygon(curve((178, 276), (192, 300), (206, 276), 12), fill=(200, 60, 80), outline=INK, width=3)
    pen.polygon(curve((184, 288), (192, 296), (200, 288), 8), fill=(255, 140, 150), outline=None)

    # star hair clip
    pen.polygon(star_points(266, 112, 24, 10, rotation=-80), fill=(255, 214, 64), outline=INK, width=3)
    pen.ellipse((262, 108, 270, 116), fill=(255, 246, 190), outline=None)


# --- 2. starry night -----------------------------------------------------------


def starry_night() -> Image.Image:
    size = (512, 320)
    pen = Pen(size, (22, 24, 66))
    bands = [(22, 24, 66), (36, 34, 96), (58, 44, 120), (92, 58, 140), (140, 78, 150)]
    for i, colour in enumerate(bands):  # flat, stepped "cel" gradient
        pen.rect((0, i * 44, 512, 320), fill=colour)

    rng = random.Random(7)
    for _ in range(70):  # small dots
        x, y, r = rng.uniform(0, 512), rng.uniform(0, 200), rng.choice((1.2, 1.6, 2.0))
        pen.ellipse((x - r, y - r, x + r, y + r), fill=(255, 246, 210), outline=None)
    for cx, cy, r in ((70, 60, 18), (190, 36, 12), (300, 92, 15), (440, 150, 11), (120, 150, 10), (250, 170, 8)):
        pen.polygon(
            star_points(cx, cy, r, r * 0.45, rotation=-90 + rng.uniform(-12, 12)),
            fill=(255, 222, 92),
            outline=INK,
            width=2.5,
        )
        pen.ellipse((cx - r * 0.22, cy - r * 0.22, cx + r * 0.22, cy + r * 0.22), fill=(255, 250, 210), outline=None)

    # crescent moon: the outer disc minus an offset disc, as one outlined polygon
    (ox, oy, orad), (ix, iy, irad) = (427, 67, 43), (446, 56, 42)
    outer = [(ox + orad * math.cos(a), oy + orad * math.sin(a)) for a in (i * math.pi / 180 for i in range(360))]
    inner = [(ix + irad * math.cos(a), iy + irad * math.sin(a)) for a in (i * math.pi / 180 for i in range(360))]
    outer = [p for p in outer if math.hypot(p[0] - ix, p[1] - iy) > irad]
    inner = [p for p in inner if math.hypot(p[0] - ox, p[1] - oy) < orad]
    # order both arcs so they join: outer runs one way round, inner back the other way
    start = max(range(len(outer)), key=lambda i: math.dist(outer[i], outer[i - 1]))
    outer = outer[start:] + outer[:start]
    inner.sort(key=lambda p: math.atan2(p[1] - iy, p[0] - ix) % (2 * math.pi))
    gap = max(range(len(inner)), key=lambda i: math.dist(inner[i], inner[i - 1]))
    inner = inner[gap:] + inner[:gap]
    if math.dist(outer[-1], inner[0]) > math.dist(outer[-1], inner[-1]):
        inner.reverse()
    pen.polygon(outer + inner, fill=(255, 238, 160), outline=INK, width=3)
    for cx, cy, r in ((402, 70, 5), (412, 90, 3)):
        pen.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(236, 208, 120), outline=None)

    # shooting star with a trail
    pen.line([(150, 104), (236, 62)], fill=(255, 246, 210), width=3)
    pen.line([(156, 114), (232, 76)], fill=(190, 190, 255), width=2)
    pen.polygon(star_points(244, 58, 12, 5, rotation=-70), fill=(255, 250, 200), outline=INK, width=2)

    # hills (two layers) with outlines and a lit house
    far = [(x, 236 - 26 * math.sin(x / 70.0) - 10 * math.sin(x / 23.0)) for x in range(0, 521, 8)]
    pen.polygon([(-4, 330)] + far + [(516, 330)], fill=(44, 98, 120), outline=INK, width=3)
    near = [(x, 276 - 20 * math.sin(x / 55.0 + 1.7)) for x in range(0, 521, 8)]
    pen.polygon([(-4, 330)] + near + [(516, 330)], fill=(30, 70, 88), outline=INK, width=3)
    for x in range(20, 500, 60):  # grass tufts
        y = 276 - 20 * math.sin(x / 55.0 + 1.7) + 16
        pen.line([(x, y), (x + 4, y - 10), (x + 8, y)], fill=(80, 150, 150), width=2)
    # house
    pen.rect((86, 212, 146, 262), fill=(236, 214, 190), outline=INK, width=3)
    pen.polygon([(78, 216), (116, 180), (154, 216)], fill=(196, 66, 80), outline=INK, width=3)
    pen.rect((104, 226, 128, 246), fill=(255, 214, 92), outline=INK, width=2.5)
    pen.line([(116, 226), (116, 246)], width=2)
    pen.line([(104, 236), (128, 236)], width=2)
    return pen.finish()


# --- 3. cat sticker (transparent background) -----------------------------------


def cat_sticker() -> Image.Image:
    size = (320, 320)
    pen = Pen(size, (0, 0, 0, 0), mode="RGBA")
    fur, fur_shadow, inner_ear = (255, 250, 244, 255), (226, 214, 230, 255), (255, 176, 196, 255)
    ink = INK + (255,)
    white = (255, 255, 255, 255)
    # sticker border: a white halo around the silhouette
    pen.ellipse((22, 62, 298, 306), fill=white, outline=None)
    pen.polygon([(40, 150), (52, 22), (150, 100)], fill=white, outline=white, width=16)
    pen.polygon([(280, 150), (268, 22), (170, 100)], fill=white, outline=white, width=16)
    # ears
    pen.polygon([(48, 150), (60, 34), (146, 104)], fill=fur, outline=ink, width=4)
    pen.polygon([(272, 150), (260, 34), (174, 104)], fill=fur, outline=ink, width=4)
    pen.polygon([(66, 128), (72, 62), (120, 104)], fill=inner_ear, outline=None)
    pen.polygon([(254, 128), (248, 62), (200, 104)], fill=inner_ear, outline=None)
    # head/body
    pen.ellipse((34, 74, 286, 294), fill=fur, outline=ink, width=4.5)
    pen.chord((40, 80, 280, 288), 20, 160, fill=fur_shadow)
    pen.ellipse((40, 80, 280, 270), fill=fur, outline=None)
    # stripes
    for dx in (-26, 0, 26):
        pen.line(
            curve((160 + dx, 82), (160 + dx * 1.1, 98), (160 + dx * 0.9, 116), 8), fill=(232, 150, 80, 255), width=6
        )
    # eyes
    for cx in (112, 208):
        pen.ellipse((cx - 26, 150, cx + 26, 206), fill=(40, 34, 60, 255), outline=ink, width=3)
        pen.ellipse((cx - 18, 156, cx - 2, 174), fill=white, outline=None)
        pen.ellipse((cx + 6, 186, cx + 14, 194), fill=white, outline=None)
    # nose, mouth, whiskers, cheeks
    pen.polygon([(152, 212), (168, 212), (160, 222)], fill=(240, 110, 140, 255), outline=ink, width=2.5)
    pen.line(curve((160, 222), (152, 236), (140, 228), 8), fill=ink, width=3)
    pen.line(curve((160, 222), (168, 236), (180, 228), 8), fill=ink, width=3)
    for side in (-1, 1):
        for dy in (-8, 6):
            pen.line([(160 + side * 62, 214 + dy), (160 + side * 112, 206 + dy * 1.8)], fill=ink, width=2.5)
        pen.ellipse((160 + side * 80 - 18, 216, 160 + side * 80 + 18, 232), fill=(255, 170, 186, 255), outline=None)
    # paws
    for cx in (118, 202):
        pen.ellipse((cx - 30, 258, cx + 30, 298), fill=fur, outline=ink, width=4)
        for dx in (-10, 10):
            pen.line([(cx + dx, 268), (cx + dx, 280)], fill=ink, width=2.5)
    return pen.finish()


# --- 4. degraded copies: what people really upload --------------------------------------------
# Two drawings shrunk, softened and saved as a low-quality JPEG, then stored as PNG so that the
# damage is kept exactly. Bicubic enlarges the blur and the JPEG blocks with them; a CNN trained
# on such damage redraws clean lines, so the difference shows at full view.


def degrade(image: Image.Image, size: tuple[int, int], blur: float, quality: int) -> Image.Image:
    small = image.convert("RGB").resize(size, Image.Resampling.BICUBIC).filter(ImageFilter.GaussianBlur(blur))
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=quality, subsampling=2)  # 4:2:0, like most cameras and sites
    return Image.open(buffer).convert("RGB")


EXAMPLES = {
    "chibi_face.png": chibi_face,
    "starry_night.png": starry_night,
    "cat_sticker.png": cat_sticker,
    "chibi_face_blurry.png": lambda: degrade(chibi_face(), (256, 256), blur=1.0, quality=45),
    "starry_night_jpeg.png": lambda: degrade(starry_night(), (320, 200), blur=0.6, quality=40),
}


def main(out_dir: Path = OUT_DIR) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in EXAMPLES.items():
        path = out_dir / name
        draw().save(path, optimize=True)
        written.append(path)
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
