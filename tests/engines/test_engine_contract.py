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
import tiny_sd
import torch
from PIL import Image

from cnaps_demo import api
from cnaps_demo.engines import (
    DEFAULT_ENGINE_ID,
    EXAMPLE_BASELINE_ID,
    FAST_CPU_ENGINE_ID,
    INSIDE_ENGINE_ID,
    Anatomy,
    Engine,
    RunOptions,
    all_engines,
)
from cnaps_demo.engines.diffusion import DiffusionTraits
from cnaps_demo.errors import CnapsError, InvalidParameterError, UnknownEngineError
from cnaps_demo.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
ENGINES = all_engines()
IDS = [engine.id for engine in ENGINES]
KINDS = ("choice", "int", "float", "str", "bool")
PICKER_CHARS = 14  # what a phone-wide picker shows without cutting a name
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
    if not isinstance(engine, DiffusionTraits):
        return {}
    assert engine.pipeline in TINY_KITS, f"add tiny components for {engine.pipeline} to TINY_KITS in {__file__}"
    return {"model": str(tiny_folders(engine.pipeline)), **TINY_KITS[engine.pipeline][1]}


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
def test_it_names_itself_in_a_visitors_words(engine):
    """What the page shows for it comes from the engine: a kind, and a name that fits a phone-wide picker."""
    assert engine.kind_words and engine.kind_words == engine.kind_words.strip()
    assert engine.short_name and len(engine.short_name) <= PICKER_CHARS, engine.short_name
    assert engine.short_name == (engine.picker_name or engine.display_name.split(" (")[0])
    assert isinstance(engine.is_baseline, bool)
    assert not (engine.is_baseline and (engine.fetches_weights or engine.looks_inside or engine.makes_frames))


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


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_it_offers_visitors_only_values_its_parameters_accept(engine):
    """``offered_values``: per field, published values its spec accepts; nothing for other fields."""
    assert engine.offered_values("no_such_parameter") == ()
    for spec in engine.params:
        offered = engine.offered_values(spec.name)
        assert isinstance(offered, tuple) and len(set(offered)) == len(offered), spec.name
        assert all(isinstance(value, str) and spec.check(value) == value for value in offered), spec.name
        if offered:
            assert spec.kind == "str", spec.name  # weight-naming fields only (``model``, ``controlnet``)
    if engine.fetches_weights:  # what it was made for is on offer, so a visitor can pick it back
        assert engine.check_params({})["model"] in engine.offered_values("model")


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
    for size in ((1, 1), (100_000, 100_000)):  # sizes it may refuse: with our typed errors, if it does
        try:
            engine.check_size(*size)
        except Exception as error:  # noqa: BLE001 - the check is on the type
            assert isinstance(error, CnapsError), (size, error)


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
    rgb = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    look = anatomy.look(rgb)
    scale = anatomy.scale
    assert look.layers and all(layer.name and layer.activation.ndim == 3 for layer in look.layers)
    parts = look.decomposition
    assert parts.output.shape == (64 * scale, 64 * scale, 3)
    assert np.allclose(parts.base + parts.residual, parts.output, atol=1e-4)  # the sum it says it computes
    # Where a pixel comes from: the local forward reproduces its own output (away from the border,
    # where the two pad differently).
    box = (30 * scale, 30 * scale, 34 * scale, 34 * scale)
    local = anatomy.local(rgb, box)
    left, top, right, bottom = local.input_box
    crop = torch.from_numpy(np.ascontiguousarray(rgb[top:bottom, left:right].transpose(2, 0, 1)))[None]
    traced = local.forward(crop)[0].detach().permute(1, 2, 0).numpy()
    assert np.allclose(traced, parts.output[box[1] : box[3], box[0] : box[2]], atol=1e-4)


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
        assert engine.download_weights(defaults, settings=open_server) == []


@pytest.mark.parametrize("engine", [engine for engine in ENGINES if engine.fetches_weights], ids=lambda e: e.id)
def test_the_operators_download_finds_weights_already_here_without_the_network(engine, tiny_folders):
    """``download_weights`` (``python -m cnaps_demo download``) on a local model folder: checked, not fetched."""
    params = engine.check_params(small_params(engine, tiny_folders), get_settings())
    fetched = engine.download_weights(params, settings=get_settings(), progress=False)
    assert fetched == [(params["model"], Path(params["model"]))]


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_warming_it_is_safe_and_says_what_it_cost(engine):
    """``warm``: seconds spent, or None where there is nothing to warm (or its weights are not here)."""
    spent = engine.warm(RunOptions(device="cpu"))
    assert spent is None or (isinstance(spent, float) and spent >= 0)
    again = engine.warm(RunOptions(device="cpu"))  # safe to call again
    assert (again is None) is (spent is None)


@pytest.mark.parametrize("engine", ENGINES, ids=IDS)
def test_every_engine_says_what_it_learned_from(engine):
    """The "what it learned from" view reads this sentence from the engine, never from its family."""
    assert engine.learned_from.endswith(".") and len(engine.learned_from.split()) >= 10


# --- the registry's roles ---------------------------------------------------------------------


def test_the_roles_the_surfaces_name_are_played_by_engines_that_fit_them():
    from cnaps_demo import engines

    assert len(set(IDS)) == len(IDS)
    roles = (DEFAULT_ENGINE_ID, FAST_CPU_ENGINE_ID, INSIDE_ENGINE_ID)
    default, fast, inside = (engines.get_engine(name) for name in roles)
    assert default.device_need == fast.device_need == "cpu" and not default.is_baseline
    assert inside.looks_inside and engines.get_engine(EXAMPLE_BASELINE_ID).is_baseline
    warm = engines.warm_engine_ids()
    assert set(warm) <= set(IDS) and {engine.id for engine in ENGINES if engine.fetches_weights} <= set(warm)
    with pytest.raises(UnknownEngineError, match="realcugan"):  # the hint lists the known engines
        engines.get_engine("no-such-engine")


# --- the diffusion family's descriptors ----------------------------------------------------------

DIFFUSION = [engine for engine in ENGINES if isinstance(engine, DiffusionTraits)]


@pytest.mark.parametrize("engine", DIFFUSION, ids=lambda engine: engine.id)
def test_every_diffusion_engine_fills_in_what_the_family_helpers_read(engine, tiny_folders):
    import diffusers

    from cnaps_demo.engines.diffusion import a1111, estimate_cpu_seconds, hub

    assert engine.fetches_weights and engine.makes_frames and hub.is_hub_id(engine.published_model)
    assert engine.check_params({})["model"] == engine.published_model  # what it was made for is its default
    assert re.fullmatch(r"[0-9a-f]{40}", engine.published_revision) and engine.published_gb > 0
    assert engine.pinned_revision(engine.published_model) == engine.published_revision
    assert engine.pinned_revision("someone/other-model") == "main"
    for name in (engine.pipeline, engine.controlnet_pipeline or engine.pipeline, engine.scheduler):
        assert hasattr(diffusers, name), name
    assert engine.takes_controlnet() is any(spec.name == "controlnet" for spec in engine.params)
    for part in ("unet", "scheduler"):  # the configs the GPU benchmark builds its full-size model from
        assert (engine.unet_configs / part).is_dir(), part
    # The weights a download fetches are the parts its loader reads: its tiny model has them all.
    assert hub.inspect_folder(tiny_folders(engine.pipeline), engine.weight_parts).complete
    assert estimate_cpu_seconds(512, 512, None, engine=engine, cores=2) > 0
    text = a1111.a1111_parameters(engine, engine.check_params({}), (64, 64))
    assert f"Sampler: {engine.sampler}" in text and engine.sampler


# --- no surface tells the engines apart by id or family ------------------------------------------

# Ids of plain resampling filters are also the words torch and PIL use for them (mode="bicubic"), so
# only the learned engines' ids are looked for.
LEARNED_IDS = [engine.id for engine in ENGINES if not engine.is_baseline]
FAMILY_TEST = re.compile(r"family\s*[!=]=")
ID_LITERAL = re.compile("|".join(re.escape(f'"{engine_id}"') for engine_id in LEARNED_IDS))


def engine_modules() -> set[Path]:
    """Where engine ids may be spelled as data: the registry, and the modules that define engines."""
    import inspect

    return {ROOT / "cnaps_demo/engines/__init__.py"} | {Path(inspect.getfile(type(engine))) for engine in ENGINES}


def branches(path: Path, text: str) -> list[str]:
    """Lines of ``text`` (the file ``path``) that test ``family`` or spell a learned engine's id."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if FAMILY_TEST.search(line) or ID_LITERAL.search(line):
            found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return found


def test_no_module_outside_an_engine_branches_on_its_id_or_family():
    """The helpers (the diffusion family's ``pipelines``, ``cost``, ``provision``, ``hub``, ``a1111``,
    ``download``... and the CNN family's), ``api``, the command line and the benchmark read what an
    engine declares: no engine id as a literal, no ``family`` test. Ids stay data in the registry
    and in the engines' own modules (their ``id``, a parameter's choices)."""
    package = ROOT / "cnaps_demo"
    places = [package / "api.py", package / "cli.py", *package.glob("engines/**/*.py"), *package.glob("bench/**/*.py")]
    helpers = sorted(set(places) - engine_modules())
    assert package / "engines/diffusion/pipelines.py" in helpers and package / "cli.py" in helpers
    found = [line for path in helpers for line in branches(path, path.read_text(encoding="utf-8"))]
    assert not found, found
    # The check can fail: a helper that starts telling the engines apart is caught.
    for helper in ("pipelines.py", "cost.py", "provision.py", "hub.py", "a1111.py", "download.py"):
        path = package / "engines/diffusion" / helper
        for slip in (f'    if engine_id == "{LEARNED_IDS[-1]}":', '    if engine.family == "diffusion":'):
            assert branches(path, path.read_text(encoding="utf-8") + "\n" + slip), (helper, slip)
