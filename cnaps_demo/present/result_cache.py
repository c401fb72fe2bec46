"""The example-result cache: results computed ahead, so a talk needs no GPU or network.

A cache entry is keyed by the exact pixels that went into the engine, the engine id, its
checked parameters and the scale, so a hit is the same result the engine would give. It
holds the output PNG (with its metadata) and a JSON file with the stage records. No gradio.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from ..image import load_image, save_png
from ..api import UpscaleResult, availability, plan, upscale
from ..errors import CnapsError
from ..files import atomic_write
from ..frames import Frame
from ..seed_spread import SeedSpread, seed_spread
from ..settings import Settings
from ..stages import StageRecord
from . import compare

log = logging.getLogger(__name__)

# Denoising frames kept with a cached result, evenly spread and always the last: each is a picture
# of the output's size (about 1 MB as PNG at 1024x1024), and a strip of 8 reads as well as all 25.
KEPT_FRAMES = 8


def kept_frames(frames: Sequence[Frame], most: int = KEPT_FRAMES) -> list[Frame]:
    """At most ``most`` of ``frames``, evenly spread from the first to the last (the result)."""
    if len(frames) <= most:
        return list(frames)
    picks = sorted({round(i * (len(frames) - 1) / (most - 1)) for i in range(most)})
    return [frames[i] for i in picks]


def cache_key(
    image: Image.Image, engine_id: str, params: dict[str, Any], scale: int = 2, colour_fix: str = "off"
) -> str:
    digest = hashlib.sha256()
    digest.update(f"{image.mode}|{image.width}x{image.height}|".encode())
    digest.update(image.tobytes())
    digest.update(f"|{engine_id}|{scale}|{colour_fix}|".encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:32]


class ExampleCache:
    """Results on disk under ``root``: ``<key>.png`` plus ``<key>.json``."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = Path(root)
        self.settings = settings  # how warm() runs the engines

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.png", self.root / f"{key}.json"

    def get(
        self, image: Image.Image, engine_id: str, params: dict[str, Any], scale: int = 2, colour_fix: str = "off"
    ) -> UpscaleResult | None:
        """The stored result of exactly this run (same pixels, engine, parameters, scale, colour fix)."""
        png, meta = self._paths(cache_key(image, engine_id, params, scale, colour_fix))
        if not (png.is_file() and meta.is_file()):
            return None
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
            output = load_image(png, max_pixels=1 << 40).image
        except (OSError, ValueError, CnapsError):
            return None
        stages = [
            StageRecord(
                s["name"], tuple(s["input_shape"]), tuple(s["output_shape"]), float(s["seconds"]), dict(s["detail"])
            )
            for s in record.get("stages", [])
        ]
        return UpscaleResult(
            image=output,
            input_image=image,
            engine_id=record["engine_id"],
            engine_name=record["engine_name"],
            scale=int(record["scale"]),
            params=dict(record.get("params", {})),
            stages=stages,
            seconds=float(record.get("seconds", 0.0)),
            notices=tuple(record.get("notices", ())),
            device=record.get("device", "auto"),
            extra={"cached": True},
            colour_fix=record.get("colour_fix", "off"),
            frames=self._frames_of(record, png),
        )

    @staticmethod
    def _frames_of(record: dict[str, Any], png: Path) -> list[Frame]:
        """The denoising frames stored with a result (none for an engine that makes none, or if any is lost)."""
        frames = []
        for kept in record.get("frames", []):
            try:
                image = load_image(png.with_name(kept["file"]), max_pixels=1 << 40).image
            except (OSError, ValueError, KeyError, CnapsError):
                return []
            fields = {name: kept[name] for name in ("step", "total", "timestep", "sigma", "tile", "tiles", "exact")}
            frames.append(Frame(image=image, **fields))
        return frames

    def put(self, image: Image.Image, result: UpscaleResult) -> None:
        """Store ``result`` for the engine input ``image``; failures are logged, not raised."""
        key = cache_key(image, result.engine_id, result.params, result.scale, result.colour_fix)
        png, meta = self._paths(key)
        record = {
            "engine_id": result.engine_id,
            "engine_name": result.engine_name,
            "scale": result.scale,
            "params": result.params,
            "stages": [stage.as_dict() for stage in result.stages],
            "seconds": result.seconds,
            "notices": list(result.notices),
            "device": result.device,
            "colour_fix": result.colour_fix,
            "frames": [],
        }
        try:
            for frame in kept_frames(result.frames):  # before the JSON, which makes the entry a hit
                file = png.with_name(f"{png.stem}-step{frame.step:03d}.png")
                save_png(frame.image, file, {"cnaps:frame": frame.caption})
                fields = {name: getattr(frame, name) for name in ("step", "total", "timestep", "sigma", "tile", "tiles")}
                record["frames"].append({**fields, "exact": bool(frame.exact), "file": file.name})
            result.save(png)
            atomic_write(meta, json.dumps(record, default=str).encode())  # last: a PNG without it is no hit
        except OSError as error:
            log.warning("example cache: could not store %s (%s)", key, error)

    def get_seeds(
        self, image: Image.Image, engine_id: str, params: dict[str, Any], scale: int = 2
    ) -> SeedSpread | None:
        """The stored seed map of exactly this run (the engine's raw pictures: no colour fix), or None."""
        meta = self._seeds_path(image, engine_id, params, scale)
        if not meta.is_file():
            return None
        try:
            record = json.loads(meta.read_text(encoding="utf-8"))
            images = [load_image(meta.with_name(name), max_pixels=1 << 40).image for name in record["files"]]
            return seed_spread(record["seeds"], images)
        except (OSError, ValueError, KeyError, TypeError, CnapsError):
            return None

    def put_seeds(
        self, image: Image.Image, engine_id: str, params: dict[str, Any], found: SeedSpread, scale: int = 2
    ) -> None:
        """Keep ``found`` (the run of ``params`` at several seeds) beside the run's result; failures are
        logged, not raised. The spread is not stored: it is recomputed from the pictures on reading."""
        meta = self._seeds_path(image, engine_id, params, scale)
        files = []
        try:
            for seed, picture in zip(found.seeds, found.images):  # before the JSON, which makes the entry a hit
                file = meta.with_name(f"{meta.stem}-{seed}.png")
                save_png(picture, file, {"cnaps:seed": str(seed)})
                files.append(file.name)
            record = {"engine_id": engine_id, "seeds": list(found.seeds), "files": files}
            atomic_write(meta, json.dumps(record).encode())
        except OSError as error:
            log.warning("example cache: could not store the seed map %s (%s)", meta.name, error)

    def _seeds_path(self, image: Image.Image, engine_id: str, params: dict[str, Any], scale: int) -> Path:
        # The seeds' pictures are the engine's own, before any colour fix: one entry whatever the switch.
        return self.root / f"{cache_key(image, engine_id, params, scale, 'off')}-seeds.json"

    def warm(
        self,
        examples: Iterable[Path],
        engines: Sequence[str],
        simulate: Sequence[bool] = (False, True),
        progress: Callable[[str], None] = log.info,
    ) -> list[str]:
        """Compute missing results for ``examples`` x ``engines`` (default parameters).

        Returns one line per example/engine ("cached", "computed" or why it was skipped).
        """
        from ..engines import get_engine

        report: list[str] = []
        for path in examples:
            try:
                original = load_image(path, max_pixels=self.settings.max_input_pixels).image
            except CnapsError as error:
                report.append(f"{path.name}: skipped ({error})")
                continue
            sources = []
            for flag in simulate:
                sources.append((flag, compare.simulate_blurry_source(original)[0] if flag else original))
            for engine_id in engines:
                try:
                    engine = get_engine(engine_id)
                except CnapsError as error:
                    report.append(f"{path.name} / {engine_id}: skipped ({error})")
                    continue
                ok, reason = availability(engine, settings=self.settings)
                if not ok:
                    report.append(f"{path.name} / {engine_id}: skipped (unavailable: {reason})")
                    continue
                if engine.device_need == "gpu" and not _gpu_present():
                    report.append(f"{path.name} / {engine_id}: skipped (no GPU: too slow to compute ahead)")
                    continue
                params = engine.check_params({}, self.settings)
                colour_fix = plan(engine, settings=self.settings).colour_fix  # the engine's default, as a run
                for flag, source in sources:
                    label = f"{path.name} / {engine_id}{' / blurry' if flag else ''}"
                    report.extend(self._warm_one(label, source, engine, params, colour_fix))
                    progress(report[-1])
        return report

    def _warm_one(
        self, label: str, source: Image.Image, engine: Any, params: dict[str, Any], colour_fix: str
    ) -> list[str]:
        """The result of ``engine`` on ``source`` (default parameters), computed unless stored; with the
        seed map beside it for an engine that can draw one ("seeds" in its explorations)."""
        lines = []
        if self.get(source, engine.id, params, colour_fix=colour_fix) is not None:
            lines.append(f"{label}: cached")
        else:
            try:
                # An engine that makes frames keeps some, so the page can show its denoising from the
                # cache where no GPU is present.
                result = upscale(source, engine=engine.id, settings=self.settings, frames=engine.makes_frames)
            except CnapsError as error:
                return [f"{label}: failed ({error})"]
            self.put(source, result)
            lines.append(f"{label}: computed in {result.seconds:.1f} s")
        if "seeds" in engine.explorations and self.get_seeds(source, engine.id, params) is None:
            try:
                found = plan(engine, settings=self.settings, **params).explore("seeds", source)
            except CnapsError as error:
                return [*lines, f"{label} / seed map: failed ({error})"]
            self.put_seeds(source, engine.id, params, found)
            lines.append(f"{label} / seed map: computed")
        return lines


def _gpu_present() -> bool:
    from ..devices import cuda_available, mps_available

    return cuda_available() or mps_available()


def warm_in_background(
    cache: ExampleCache,
    examples: Sequence[Path],
    engines: Sequence[str],
    after: Callable[[], object] | None = None,
) -> threading.Thread:
    """Start filling the cache on a daemon thread (the page is served meanwhile), then run ``after``."""

    def work() -> None:
        try:
            for line in cache.warm(examples, engines):
                log.info("example cache: %s", line)
        except Exception:  # never take the app down for a cache
            log.exception("example cache: warming failed")
        if after is not None:
            try:
                after()
            except Exception:  # the first job will say what is wrong
                log.exception("warm-up after the example cache failed")

    thread = threading.Thread(target=work, name="cnaps-example-warm", daemon=True)
    thread.start()
    return thread
