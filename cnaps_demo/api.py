"""``upscale()``: one image in, one engine, one result out (image + stage records).

This module is where a run's decisions are made, once: the inputs are checked
(``prepare``), and the device, tile and limits are resolved from one explicit ``Settings``
into the ``RunOptions`` the engine receives. The web UI and the CLI are thin adapters over
``prepare``/``upscale`` and ``availability``; engines check nothing twice.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image

from . import colour, fidelity
from .image import LoadedImage, encode_png, load_image, merge_alpha, save_png, split_alpha
from .devices import choose_device, cpu_thread_count
from .engines import DEFAULT_ENGINE_ID, Availability, Engine, RunOptions, all_engines, get_engine
from .errors import CnapsError, DeviceUnavailableError, EngineUnavailableError, InvalidParameterError
from .settings import Settings, get_settings
from .stages import ProgressFn, StageRecord, no_progress
from .version import __version__


def output_name(stem: str, engine_id: str, scale: int) -> str:
    """The file name of a result, the same from the CLI and the web page: ``<stem>-<engine>-x<scale>.png``."""
    return f"{stem}-{engine_id}-x{scale}.png"


@dataclass
class UpscaleResult:
    image: Image.Image  # RGB or RGBA, scale x the input
    input_image: Image.Image  # the decoded input (RGB or RGBA)
    engine_id: str
    engine_name: str
    scale: int
    params: dict[str, Any]
    stages: list[StageRecord]
    seconds: float
    notices: tuple[str, ...] = ()
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)
    truth: Image.Image | None = None  # the original picture, when the caller has one (scale x the input)
    colour_fix: str = "off"  # the colour fix method that ran ("wavelet", "gaussian"), or "off"
    # frames=True on a diffusion engine: one Frame per UNet step (.step, .image, .timestep, .sigma);
    # the last one is the result's picture.
    frames: list[Any] = field(default_factory=list)
    png_text: dict[str, str] = field(default_factory=dict)  # the engine's own PNG text (A1111 "parameters")

    @cached_property
    def fidelity(self) -> dict[str, Any]:
        """How faithful the result is (``cnaps_demo.fidelity``): ``lr_psnr`` (dB), ``sharpness`` (x bicubic),
        ``colour_shift`` (/255, with ``colour_shift_rgb``); plus ``psnr`` and ``ssim`` when ``truth`` was given.
        Computed on first use."""
        return fidelity.fidelity(self.image, self.input_image, self.truth)

    @property
    def metadata(self) -> dict[str, str]:
        """Text chunks written into the output PNG."""
        return {
            "Software": f"cnaps-demo {__version__}",
            "cnaps:engine": self.engine_id,
            "cnaps:scale": str(self.scale),
            "cnaps:params": json.dumps(self.params, sort_keys=True, default=str),
            "cnaps:tiles": str(self.tiles),
            "cnaps:colour_fix": self.colour_fix,
            "cnaps:version": __version__,
            **self.png_text,
        }

    @property
    def tiles(self) -> int:
        """How many tiles the model ran on (1: the whole picture at once)."""
        return max((int(stage.detail.get("tiles", 1)) for stage in self.stages), default=1)

    def png_bytes(self) -> bytes:
        return encode_png(self.image, self.metadata)

    def save(self, path: str | Path) -> Path:
        return save_png(self.image, path, self.metadata)


def run_options(
    settings: Settings, *, device: str = "cpu", tile: int = 0, progress: ProgressFn = no_progress
) -> RunOptions:
    """The ``RunOptions`` for one run: ``tile`` 0 means ``Settings.tile`` (CNAPS_TILE), on every surface."""
    return RunOptions(
        device=device,
        tile=tile or settings.tile,
        progress=progress,
        cpu_threads=settings.cpu_threads,
        cpu_bf16=settings.cpu_bf16,
        cpu_conv=settings.cpu_conv,
        torch_compile=settings.torch_compile,
        weights_cache=settings.cache_dir / "weights",
        hub_cache=settings.hub_cache,
    )


def _device(engine: Engine, requested: str, settings: Settings, *, probe: bool = True) -> tuple[str, str]:
    """(device name, problem) for ``engine``, decided by ``devices.choose_device``."""
    if not engine.uses_torch:
        return "cpu", ""
    return choose_device(
        requested,
        configured=settings.device,
        gpu_only=engine.device_need == "gpu",
        allow_cpu=settings.allow_cpu_diffusion,
        cpu_refusal=engine.cpu_refusal(),
        probe=probe,
    )


def availability(
    engine: str | Engine,
    *,
    device: str = "auto",
    params: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> Availability:
    """Can ``engine`` run here with ``params`` on ``device``? Packages, weights and device; loads nothing."""
    settings = settings or get_settings()
    chosen = get_engine(engine) if isinstance(engine, str) else engine
    checked = chosen.check_params(params or {}, settings)
    name, problem = _device(chosen, device, settings, probe=False)
    ok, reason = chosen.available(checked, run_options(settings, device=name))
    reasons = [text for text in ("" if ok else reason, problem) if text]
    return Availability(not reasons, " ".join(reasons))


@dataclass(frozen=True)
class Plan:
    """Engine, scale, parameters and how to run, checked: ready for any number of images."""

    engine: Engine
    scale: int
    params: dict[str, Any]  # checked, defaults filled
    options: RunOptions
    settings: Settings
    problem: str = ""  # why the engine cannot run here ("" when it can)
    problem_type: type[EngineUnavailableError] = EngineUnavailableError  # DeviceUnavailableError: the device
    colour_fix: str = "off"  # colour.resolve(): "wavelet", "gaussian" or "off"
    frames: Any = False  # True, or a callable given each Frame as it is made: keep the denoising frames

    def require_runnable(self) -> Plan:
        """``self``, or ``EngineUnavailableError`` with the fix when the engine cannot run here."""
        if self.problem:
            raise self.problem_type(f"{self.engine.display_name} ({self.engine.id}) cannot run here.", hint=self.problem)
        return self

    def explore(self, what: str, image: Image.Image) -> Any:
        """``Engine.explore`` of ``image`` (the engine's input) with this plan's parameters and device:
        "sweep" or "seeds" where the engine declares it; ``EngineUnavailableError`` when it cannot run here."""
        self.require_runnable()
        return self.engine.explore(what, image, self.params, self.options)

    def fetchable(self) -> bool:
        """The engine lacks only weights this server may fetch now (``Engine.may_fetch_weights``:
        downloads allowed, the model on the operator's list, a device to run them on). No network."""
        if not self.problem or self.problem_type is DeviceUnavailableError or not self.engine.fetches_weights:
            return False
        try:
            return self.engine.may_fetch_weights(self.params, settings=self.settings, device=self.options.device).ok
        except CnapsError:  # its settings name no Hub model: nothing to fetch, it stays refused
            return False

    def provisioned(self, progress: Callable[[int, int, str], None] | None = None) -> Plan:
        """``self``, or, when it lacks only weights it may fetch (``fetchable``), the plan after fetching
        them (``progress(done_bytes, total_bytes, what)`` follows the download)."""
        if not self.fetchable():
            return self
        self.engine.fetch_weights(self.params, settings=self.settings, device=self.options.device, progress=progress)
        ok, reason = self.engine.available(self.params, self.options)
        return dataclasses.replace(self, problem="" if ok else reason)

    def load(
        self,
        image: Any,
        *,
        max_pixels: int | None = None,
        limit_setting: str = "CNAPS_MAX_PIXELS",
        progress: ProgressFn | None = None,
        truth: Any = None,
        frames: Any = None,
    ) -> Request:
        """Decode and check ``image`` (header first: ``max_pixels``, default ``Settings.max_input_pixels``,
        named ``limit_setting`` in the hint; then the engine's own size limits). ``truth``, the original
        picture (exactly ``scale`` x the input's size), adds PSNR and SSIM to ``result.fidelity``."""
        limit = self.settings.max_input_pixels if max_pixels is None else max_pixels
        loaded = load_image(image, max_pixels=limit, limit_setting=limit_setting)
        self.engine.check_size(*loaded.image.size)
        original = None if truth is None else _load_truth(truth, loaded.image.size, self.scale, limit)
        options = self.options if progress is None else dataclasses.replace(self.options, progress=progress)
        wanted = self.frames if frames is None else frames
        return Request(self, loaded, options, original, wanted)


def _load_truth(truth: Any, size: tuple[int, int], scale: int, limit: int) -> Image.Image:
    """The original picture, checked to be exactly ``scale`` x ``size`` (what the result will be)."""
    image = load_image(truth, max_pixels=limit * scale * scale, limit_setting="CNAPS_MAX_PIXELS").image
    wanted = (size[0] * scale, size[1] * scale)
    if image.size != wanted:
        raise InvalidParameterError(
            f"The original picture (truth) is {image.width}x{image.height}; the result will be {wanted[0]}x{wanted[1]}.",
            hint=f"Give the original the input was shrunk from, cropped to exactly {scale}x the input's size.",
        )
    return image


@dataclass(frozen=True)
class Request:
    """One checked image on a checked plan, not started yet."""

    plan: Plan
    loaded: LoadedImage
    options: RunOptions
    truth: Image.Image | None = None
    frames: Any = False  # True or a callable: collect the denoising frames (see ``Plan.frames``)

    @property
    def image(self) -> Image.Image:
        return self.loaded.image

    @property
    def params(self) -> dict[str, Any]:
        return self.plan.params

    def run(self) -> UpscaleResult:
        """Run the engine (``EngineUnavailableError`` with the fix if it cannot run here)."""
        engine, scale = self.plan.require_runnable().engine, self.plan.scale
        started = time.perf_counter()
        rgb, alpha = split_alpha(self.loaded.image)
        frames: list[Any] = []
        options = self.options
        if self.frames:
            options = dataclasses.replace(options, frames=_collector(frames, self.frames))
        output = engine.run(rgb, scale=scale, params=self.plan.params, options=options)
        stages = list(output.stages)
        result_image = output.image
        if self.plan.colour_fix != "off":
            workers = cpu_thread_count(self.options.cpu_threads)
            result_image = _colour_fix_stage(result_image, rgb, self.plan.colour_fix, stages, workers)
        if frames and result_image is not output.image:  # the strip ends on the picture the caller gets
            frames[-1] = dataclasses.replace(frames[-1], image=result_image)
        if alpha is not None:
            alpha_started = time.perf_counter()
            result_image = merge_alpha(result_image, alpha)
            stages.append(
                StageRecord(
                    f"alpha bicubic x{scale}",
                    (1, alpha.height, alpha.width),
                    (1, result_image.height, result_image.width),
                    time.perf_counter() - alpha_started,
                )
            )
        return UpscaleResult(
            image=result_image,
            input_image=self.loaded.image,
            engine_id=engine.id,
            engine_name=engine.display_name,
            scale=scale,
            params=self.plan.params,
            stages=stages,
            seconds=time.perf_counter() - started,
            notices=self.loaded.notices,
            device=self.options.device,
            truth=self.truth,
            colour_fix=self.plan.colour_fix,
            frames=frames,
            png_text=dict(output.png_text),
        )


def _collector(frames: list[Any], wanted: Any) -> Any:
    """A frame callback that keeps each frame in ``frames`` and hands it on to ``wanted`` if callable."""

    def keep(frame: Any) -> None:
        frames.append(frame)
        if callable(wanted):
            wanted(frame)

    return keep


def _colour_fix_stage(
    image: Image.Image, source: Image.Image, method: str, stages: list[StageRecord], workers: int
) -> Image.Image:
    """``colour.colour_fix`` (on ``workers`` threads) as a recorded stage, so the diagram shows it."""
    started = time.perf_counter()
    fixed = colour.colour_fix(image, source, method, workers)
    shape = (3, image.height, image.width)
    detail = {"method": method, "colours from": f"bicubic {image.width}x{image.height} of the input"}
    stages.append(StageRecord(f"colour fix ({method})", shape, shape, time.perf_counter() - started, detail))
    return fixed


def plan(
    engine: str | Engine = DEFAULT_ENGINE_ID,
    *,
    scale: int | None = None,
    device: str = "auto",
    tile: int = 0,
    progress: ProgressFn = no_progress,
    settings: Settings | None = None,
    colour_fix: bool | str | None = None,
    frames: Any = False,
    **params: Any,
) -> Plan:
    """Check what does not depend on the image, once: the engine (an id, or an ``Engine`` as listed by
    ``engines.all_engines``), the scale, the parameters
    (and how they combine), the device, and whether the engine can run here (kept in
    ``Plan.problem``, raised by ``Request.run``, so a cached result can still be served).
    ``colour_fix``: None is the engine's default (``Engine.colour_fix_by_default``), True/False force
    it, or a method name ("wavelet", "gaussian"). ``frames``: True keeps a diffusion engine's
    denoising frames in ``result.frames``; a callable also gets each one as it is made (streaming)."""
    settings = settings or get_settings()
    chosen = engine if isinstance(engine, Engine) else get_engine(engine)
    scale = chosen.check_scale(scale)
    checked = chosen.check_params(params, settings)
    chosen.check_combination(scale, checked)
    fix = colour.resolve(colour_fix, chosen.colour_fix_by_default)
    name, problem = _device(chosen, device, settings)
    options = run_options(settings, device=name, tile=tile, progress=progress)
    if problem:
        return Plan(chosen, scale, checked, options, settings, problem, DeviceUnavailableError, fix, frames)
    ok, reason = chosen.available(checked, options)
    return Plan(chosen, scale, checked, options, settings, "" if ok else reason, colour_fix=fix, frames=frames)


def prepare(
    image: Any,
    engine: str | Engine = DEFAULT_ENGINE_ID,
    *,
    max_pixels: int | None = None,
    limit_setting: str = "CNAPS_MAX_PIXELS",
    truth: Any = None,
    **plan_args: Any,
) -> Request:
    """``plan(engine, **plan_args).load(image, ...)``: everything checked before any model loads."""
    return plan(engine, **plan_args).load(image, max_pixels=max_pixels, limit_setting=limit_setting, truth=truth)


def upscale(image: Any, engine: str | Engine = DEFAULT_ENGINE_ID, **options: Any) -> UpscaleResult:
    """Upscale ``image`` (path, bytes, PIL image or numpy array) with ``engine``.

    Keywords as for ``prepare``/``plan``: ``scale``, ``device``, ``tile`` (0 means
    ``CNAPS_TILE``, else the engine's default), ``progress``, ``max_pixels``, ``settings``
    (default: the environment's), ``truth`` (the original picture: adds PSNR and SSIM to
    ``result.fidelity``), ``colour_fix`` (None: the engine family's default), ``frames`` (True:
    ``result.frames``, the denoising filmstrip of a diffusion engine), and the engine's own
    parameters. Everything is checked before any model loads.
    """
    return prepare(image, engine, **options).run()


def warm_up(settings: Settings | None = None, engines: Iterable[str | Engine] | None = None) -> dict[str, float]:
    """Pay each engine's one-time costs (``Engine.warm``) on the device it runs on here; engine id ->
    seconds. Default: every engine that has something to warm. Meant for a background thread."""
    settings = settings or get_settings()
    chosen = [get_engine(e) if isinstance(e, str) else e for e in (all_engines() if engines is None else engines)]
    spent: dict[str, float] = {}
    for engine in chosen:
        name, problem = _device(engine, "auto", settings, probe=False)
        seconds = None if problem else engine.warm(run_options(settings, device=name))
        if seconds is not None:
            spent[engine.id] = seconds
    return spent
