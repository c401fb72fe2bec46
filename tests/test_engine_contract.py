"""The contract every engine passes (diffusers' ``PipelineTesterMixin`` and spandrel's shared asserts
are the model): its declarations are well formed and true, it runs a small picture through the
app's own path (``api.plan`` -> ``Plan.load`` -> ``Request.run``), and it refuses bad parameters
with our typed errors before anything loads.

The diffusion engines run the tiny random components of ``tests/tiny_sd.py`` (real diffusers
pipelines loaded by the engines' own loading code, never a mock). Which tiny components fit an
engine is keyed by the pipeline class it declares, so a new engine on a known pipeline needs
nothing here. Nothing is downloaded (HF_HUB_OFFLINE=1, a private Hub cache).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import tiny_sd
from cnaps_demo import api
from cnaps_demo.engines import Anatomy, Engine, RunOptions, all_engines, engine_ids, get_engine
from cnaps_demo.errors import InvalidParameterError
from cnaps_demo.settings import get_settings

ROOT = Path(__file__).resolve().parents[1]
ENGINES = all_engines()
IDS = [engine.id for engine in ENGINES]
KINDS = ("choice", "int", "float", "str", "bool")
EXPLORATIONS = ("sweep", "seeds")
# The tiny components and quick parameters (a few UNet steps, no ControlNet, Lanczos pre-enlarge) per
# diffusers pipeline class an engine declares (``DiffusionTraits.pipeline``).
TINY_KITS = {
    "StableDiffusionImg2ImgPipeline": (
        tiny_sd.build_img2img_folder,
        {"steps": 4, "strength": 0.5, "pre_upscaler": "lanczos", "controlnet": "none"},
    ),
    "StableDiffusionLatentUpscalePipeline": (tiny_sd.build_latent_upscaler_folder, {"steps": 2}),
}


@pytest.fixture(autouse=True)
def _offline_private_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    for name in ("CNAPS_SD_MODEL", "CNAPS_SD_CONTROLNET", "CNAPS_DEVICE", "CNAPS_TORCH_COMPILE", "CNAPS_TILE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory):
    """Pipeline class -> its tiny model folder, built on first use (each once per module)."""
    from cnaps_demo.engines.diffusion import release_pipelines

    built: dict[str, Path] = {}

    def folder_for(pipeline: str) -> Path:
        if pipeline not in built:
            build, _ = TINY_KITS[pipeline]
            built[pipeline] = build(tmp_path_factory.mktemp("tiny"))
        return built[pipeline]

    yield folder_for
    release_pipelines()


def small_params(engine: Engine, tiny_folders) -> dict:
    """Parameters for a quick run: the defaults, or (a diffusion engine, whose weights come from the
    Hub) the tiny model of the pipeline it declares, with that kit's quick settings."""
    from cnaps_demo.engines.diffusion import describe, described_ids

    if engine.id not in described_ids():
        return {}

    pipeline = describe(engine).pipeline
    assert pipeline in TINY_KITS, f"add tiny components for {pipeline} to TINY_KITS in {__file__}"
    return {"model": str(tiny_folders(pipeline)), **TINY_KITS[pipeline][1]}


def small_plan(engine: Engine, tiny_folders, **extra) -> api.Plan:
    # An explicit CPU, as on the command line: the diffusion engines refuse device=auto without a GPU.
    return api.plan(engine, device="cpu", **small_params(engine, tiny_folders), **extra)


def picture(width: int = 24, height: int = 16) -> Image.Image:
    return tiny_sd.noise_image(width, height)


# --- declarations -----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_it_declares_itself_in_the_expected_shapes(engine):
    assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", engine.id) and engine.display_name and engine.summary
    assert engine.family and engine.device_need in ("cpu", "gpu")
    assert engine.scales and engine.default_scale in engine.scales
    assert all(isinstance(flag, bool) for flag in (engine.makes_frames, engine.fetches_weights, engine.looks_inside))
    assert isinstance(engine.explorations, tuple) and set(engine.explorations) <= set(EXPLORATIONS)
    assert all(credit.name and credit.url.startswith("https://") and credit.licence for credit in engine.credits)
    small, large = engine.gpu_seconds(64, 64, {}), engine.gpu_seconds(2048, 2048, {})
    assert isinstance(small, int) and 1 <= small <= large <= 300  # ZeroGPU's longest call
    assert api.plan(engine.id).engine is engine  # an id and the Engine itself plan the same engine


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_its_parameter_specs_are_consistent(engine):
    names = [spec.name for spec in engine.params]
    assert len(names) == len(set(names))
    for spec in engine.params:
        assert spec.kind in KINDS and spec.help, spec
        if spec.kind == "choice":
            assert spec.choices and spec.default in spec.choices, spec
        if spec.minimum is not None and spec.maximum is not None:
            assert spec.minimum <= spec.maximum, spec
        assert spec.check(spec.default) == spec.default, spec  # every default passes its own check
    defaults = engine.check_params({})
    assert list(defaults) == names
    engine.check_combination(engine.default_scale, defaults)
    for name, allowed in engine.choice_limits(engine.default_scale, defaults).items():
        choices = next(spec.choices for spec in engine.params if spec.name == name)
        assert allowed and set(allowed) <= set(choices), name


def bad_values(engine: Engine) -> list[tuple[str, object]]:
    """One value per parameter that its spec must refuse."""
    bad = []
    for spec in engine.params:
        if spec.kind == "choice":
            bad.append((spec.name, "no-such-choice"))
        if spec.kind in ("int", "float"):
            bad.append((spec.name, "not a number"))
            if spec.maximum is not None:
                bad.append((spec.name, spec.maximum + 1))
            if spec.minimum is not None:
                bad.append((spec.name, spec.minimum - 1))
        if spec.kind == "bool":
            bad.append((spec.name, "perhaps"))
    return bad


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_it_refuses_bad_parameters_with_our_errors_before_anything_loads(engine):
    for name, value in bad_values(engine):
        with pytest.raises(InvalidParameterError, match=name):
            api.plan(engine, device="cpu", **{name: value})
    with pytest.raises(InvalidParameterError, match="no_such_parameter"):
        api.plan(engine, device="cpu", no_such_parameter=1)
    with pytest.raises(InvalidParameterError, match="scale"):
        api.plan(engine, device="cpu", scale=max(engine.scales) + 97)
    with pytest.raises(InvalidParameterError):
        engine.explore("no-such-exploration", picture(), engine.check_params({}), RunOptions())


# --- what it declares is true -------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_it_runs_a_small_picture_and_makes_frames_only_if_it_says_so(engine, tiny_folders):
    plan = small_plan(engine, tiny_folders, frames=True, colour_fix=False).require_runnable()
    result = plan.load(picture()).run()
    scale = plan.scale
    assert result.image.size == (24 * scale, 16 * scale) and result.image.mode == "RGB"
    assert result.engine_id == engine.id and result.stages
    again = plan.load(picture()).run()
    assert np.array_equal(np.asarray(result.image), np.asarray(again.image))  # deterministic
    if engine.makes_frames:
        assert result.frames and all(frame.image.size == result.image.size for frame in result.frames)
        assert np.array_equal(np.asarray(result.frames[-1].image), np.asarray(result.image))
    else:
        assert result.frames == []


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_it_looks_inside_only_if_it_says_so(engine):
    params = engine.check_params({})
    if not engine.looks_inside:
        with pytest.raises(InvalidParameterError):
            engine.anatomy(engine.default_scale, params, RunOptions())
        return
    anatomy = engine.anatomy(engine.default_scale, params, RunOptions())
    assert isinstance(anatomy, Anatomy) and anatomy.scale == engine.default_scale and anatomy.receptive_field > 0
    look = anatomy.look(np.random.default_rng(0).random((16, 20, 3), dtype=np.float32))
    assert look.layers
    assert look.decomposition.output.shape == (16 * anatomy.scale, 20 * anatomy.scale, 3)


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_it_runs_exactly_the_explorations_it_declares(engine, tiny_folders):
    for what in EXPLORATIONS:
        if what not in engine.explorations:
            with pytest.raises(InvalidParameterError):
                engine.explore(what, picture(), engine.check_params({}), RunOptions())
    if not engine.explorations:
        return
    plan = small_plan(engine, tiny_folders).require_runnable()
    size = (16 * plan.scale, 16 * plan.scale)
    for what in engine.explorations:
        found = engine.explore(what, picture(16, 16), plan.params, plan.options)
        images = [frame.image for frame in found] if what == "sweep" else [*found.images, found.image]
        assert len(images) >= 2 and all(image.size == size for image in images), what


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_it_fetches_weights_only_if_it_says_so(engine, tmp_path):
    """Its default (published) weights are not in this empty cache: a GPU server that allows
    downloads would fetch them; one that does not, would not. Never touches the network."""
    open_server = dataclasses.replace(
        get_settings(), hub_cache=tmp_path / "hub", hub_offline=False, allow_downloads=True, web_models=()
    )
    defaults = engine.check_params({}, open_server)
    fetch = engine.may_fetch_weights(defaults, settings=open_server, device="cuda")
    assert fetch.ok is engine.fetches_weights, fetch.reason
    assert bool(engine.download_size(defaults)) is engine.fetches_weights
    closed = dataclasses.replace(open_server, allow_downloads=False)
    refused = engine.may_fetch_weights(defaults, settings=closed, device="cuda")
    assert not refused.ok and refused.reason
    if engine.fetches_weights:
        assert "CNAPS_ALLOW_DOWNLOADS=0" in refused.reason
    else:
        assert engine.fetch_weights(defaults, settings=open_server, device="cuda") == []


# --- the diffusion family's descriptors ----------------------------------------------------------


def test_every_diffusion_engine_fills_in_what_the_family_helpers_read():
    import diffusers

    from cnaps_demo.engines.diffusion import a1111, describe, described_ids, estimate_cpu_seconds, hub

    assert described_ids() and set(described_ids()) <= set(engine_ids())  # each one is in the registry
    for engine_id in described_ids():
        engine, traits = get_engine(engine_id), describe(engine_id)
        assert traits is type(engine) and hub.is_hub_id(traits.published_model)
        assert hub.PUBLISHED_MODELS[engine.id] == engine.check_params({})["model"] == traits.published_model
        for name in (traits.pipeline, traits.controlnet_pipeline or traits.pipeline, traits.scheduler):
            assert hasattr(diffusers, name), name
        assert traits.pipeline in TINY_KITS, f"add tiny components for {traits.pipeline} to TINY_KITS"
        assert estimate_cpu_seconds(512, 512, None, engine=engine.id, cores=2) > 0
        text = a1111.a1111_parameters(engine.id, engine.check_params({}), (64, 64))
        assert f"Sampler: {traits.sampler}" in text and traits.sampler


def test_no_module_outside_an_engine_branches_on_its_id_or_family():
    """The engine ids appear as literals only in each engine's own ``id = ...`` line (and the
    registry, which wires the pre-enlarge engines by id); nothing compares ``family``."""
    from cnaps_demo.engines.diffusion import described_ids

    package = ROOT / "cnaps_demo"
    places = [package / "api.py", package / "cli.py", *sorted(package.glob("engines/**/*.py"))]
    places += sorted(package.glob("bench/**/*.py"))
    literals = re.compile("|".join(re.escape(f'"{engine_id}"') for engine_id in described_ids()))
    found = []
    for path in places:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            own_id = re.match(r"\s+id = \"[\w-]+\"", line)
            if re.search(r"family\s*[!=]=", line) or (literals.search(line) and not own_id):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, found
    assert literals.search(f'if kind == "{described_ids()[0]}":')  # the check can fail


@pytest.mark.parametrize("engine", all_engines(), ids=lambda engine: engine.id)
def test_every_engine_says_what_it_learned_from(engine):
    """The "what it learned from" view reads this sentence from the engine, never from its family."""
    assert engine.learned_from.endswith(".") and len(engine.learned_from.split()) >= 10
