"""PNG output and text chunks (cnaps_demo.image.png): no metadata leaks, atomic saves."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from image_samples import LIMIT, chunk_types, encode, gradient_rgb, pixels
from PIL import ExifTags, Image, PngImagePlugin

from cnaps_demo.errors import InvalidImageError, InvalidParameterError
from cnaps_demo.image import encode_png, load_image, read_png_metadata, save_png

# --- PNG output ----------------------------------------------------------------------


def _jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 0.0)
    data = encode(gradient_rgb(), "JPEG", exif=exif.tobytes(), icc_profile=b"fake-icc" * 8)
    reread = Image.open(io.BytesIO(data)).getexif()
    assert reread.get_ifd(ExifTags.IFD.GPSInfo)  # the input really carries GPS
    return data


def test_png_output_has_metadata_and_no_exif():
    loaded = load_image(_jpeg_with_gps(), max_pixels=LIMIT)
    metadata = {"Software": "cnaps-demo", "cnaps:engine": "bicubic", "note": "ünïcode ✓"}
    png = encode_png(loaded.image, metadata)
    types = chunk_types(png)
    assert b"eXIf" not in types and b"iCCP" not in types
    assert b"Exif" not in png and b"SecretCam" not in png and b"fake-icc" not in png
    assert types.count(b"tEXt") == 2 and types.count(b"iTXt") == 1  # non-Latin-1 -> iTXt
    assert read_png_metadata(png) == metadata
    reopened = Image.open(io.BytesIO(png))
    assert not reopened.getexif()
    assert dict(reopened.text) == metadata
    assert np.array_equal(pixels(reopened), pixels(loaded.image))  # lossless


def test_encode_png_ignores_the_info_dict_of_its_input():
    image = gradient_rgb()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    image.info.update({"exif": exif.tobytes(), "icc_profile": b"fake-icc", "dpi": (300, 300)})
    png = encode_png(image, {})
    assert not {b"eXIf", b"iCCP", b"pHYs", b"tEXt"} & set(chunk_types(png))
    assert b"SecretCam" not in png


def test_encode_png_keeps_alpha_and_rejects_bad_keys():
    rgba = Image.new("RGBA", (4, 4), (1, 2, 3, 4))
    out = Image.open(io.BytesIO(encode_png(rgba, {"k": "v"})))
    assert out.mode == "RGBA" and out.getpixel((0, 0)) == (1, 2, 3, 4)
    for key in ["", " lead", "x" * 80, "double  space", "snow☃"]:
        with pytest.raises(InvalidParameterError):
            encode_png(rgba, {key: "v"})
    with pytest.raises(InvalidParameterError, match="NUL"):
        encode_png(rgba, {"k": "a\x00b"})


def test_save_png_creates_parents(tmp_path):
    target = tmp_path / "a" / "b" / "out.png"
    result = save_png(gradient_rgb(), target, {"k": "v"})
    assert result == target and isinstance(result, Path)
    assert target.read_bytes() == encode_png(gradient_rgb(), {"k": "v"})
    assert read_png_metadata(target) == {"k": "v"}
    assert read_png_metadata(str(target)) == {"k": "v"}
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.png"]  # no temp left


def test_read_png_metadata_compressed_chunks_and_non_png(tmp_path):
    info = PngImagePlugin.PngInfo()
    info.add_text("plain", "latin é")
    info.add_text("zipped", "z" * 500, zip=True)
    info.add_itxt("intl", "日本語", lang="ja", tkey="x", zip=True)
    data = encode(gradient_rgb(), "PNG", pnginfo=info)
    assert set(chunk_types(data)) >= {b"tEXt", b"zTXt", b"iTXt"}
    expected = {"plain": "latin é", "zipped": "z" * 500, "intl": "日本語"}
    assert read_png_metadata(data) == expected
    assert read_png_metadata(io.BytesIO(data)) == expected
    assert read_png_metadata(encode(gradient_rgb(), "JPEG")) == {}
    with pytest.raises(InvalidImageError):
        read_png_metadata(tmp_path / "missing.png")
