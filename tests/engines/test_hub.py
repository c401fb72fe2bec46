"""Finding diffusion weights on disk, and what we say when they are missing, partial or unsafe.

Every test uses a private, empty Hub cache and HF_HUB_OFFLINE=1: nothing reaches the network.
Fake snapshots are plain folders with empty weight files (only their names matter here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cnaps_demo.cli import main as cli_main
from cnaps_demo.engines import get_engine
from cnaps_demo.engines.diffusion import hub
from cnaps_demo.engines.diffusion.download import allow_patterns_for, download
from cnaps_demo.errors import (
    IncompleteSnapshotError,
    InvalidParameterError,
    UnsafeWeightsError,
    WeightsNotFoundError,
)
from cnaps_demo.settings import get_settings

DREAMSHAPER = "Lykon/dreamshaper-8"
IMG2IMG, LATENT = get_engine("sd-img2img"), get_engine("sd-latent-x2")


def hub_cache():
    """The cache the environment names (the fixture below points it at a private folder)."""
    return get_settings().hub_cache


COMMAND = "python -m cnaps_demo download sd-img2img --model Lykon/dreamshaper-8"
MODEL_INDEX = {
    "_class_name": "StableDiffusionPipeline",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "safety_checker": [None, None],
    "scheduler": ["diffusers", "PNDMScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
}
FULL_LAYOUT = (
    "model_index.json",
    "scheduler/scheduler_config.json",
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
    "tokenizer/tokenizer_config.json",
    "text_encoder/config.json",
    "text_encoder/model.fp16.safetensors",
    "unet/config.json",
    "unet/diffusion_pytorch_model.fp16.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.fp16.safetensors",
)


@pytest.fixture(autouse=True)
def hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf-home" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("CNAPS_SD_MODEL", raising=False)
    return cache


def write_layout(root: Path, files, skip=()) -> Path:
    for name in files:
        if name in skip:
            continue
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(MODEL_INDEX) if name == "model_index.json" else "{}")
    return root


def fake_snapshot(cache: Path, repo: str, files=FULL_LAYOUT, skip=(), revision: str | None = None) -> Path:
    """A Hub cache entry: snapshots/<commit>/... and refs/main (unless pinned)."""
    commit = revision or "0123456789abcdef0123456789abcdef01234567"
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    snapshot = write_layout(repo_dir / "snapshots" / commit, files, skip)
    if revision is None:
        (repo_dir / "refs").mkdir(parents=True, exist_ok=True)
        (repo_dir / "refs" / "main").write_text(commit)
    return snapshot


def test_missing_hub_weights_name_the_command_and_the_cache(hf_cache):
    ok, reason = hub.check_available(IMG2IMG, DREAMSHAPER, cache_dir=hub_cache())
    assert not ok
    assert COMMAND in reason
    assert str(hf_cache) in reason
    with pytest.raises(WeightsNotFoundError, match="not in the Hugging Face cache"):
        hub.resolve_model(DREAMSHAPER, engine=IMG2IMG, cache_dir=hub_cache())


def default_model(engine_id: str) -> str:
    from cnaps_demo.engines import get_engine

    return get_engine(engine_id).check_params({}, get_settings())["model"]


def test_default_model_comes_from_settings(monkeypatch):
    assert default_model("sd-img2img") == DREAMSHAPER
    assert default_model("sd-latent-x2") == "stabilityai/sd-x2-latent-upscaler"
    monkeypatch.setenv("CNAPS_SD_MODEL", "someone/other")
    assert default_model("sd-img2img") == "someone/other"
    assert (
        hub.download_hint(IMG2IMG, default_model("sd-img2img"))
        == "python -m cnaps_demo download sd-img2img --model someone/other"
    )


def test_complete_snapshot_at_the_pinned_revision_resolves(hf_cache):
    pinned = IMG2IMG.published_revision
    snapshot = fake_snapshot(hf_cache, DREAMSHAPER, revision=pinned)
    assert hub.resolve_model(DREAMSHAPER, engine=IMG2IMG, cache_dir=hub_cache()) == snapshot
    assert hub.check_available(IMG2IMG, DREAMSHAPER, cache_dir=hub_cache()).ok
    assert hub.inspect_folder(snapshot).variants == {"unet": "fp16", "vae": "fp16", "text_encoder": "fp16"}


def test_snapshot_under_main_resolves_for_unpinned_models(hf_cache):
    snapshot = fake_snapshot(hf_cache, "someone/anime-sd15")
    assert IMG2IMG.pinned_revision("someone/anime-sd15") == "main"
    assert hub.resolve_model("someone/anime-sd15", engine=IMG2IMG, cache_dir=hub_cache()) == snapshot


def test_partial_snapshot_names_missing_files_and_the_command(hf_cache):
    fake_snapshot(hf_cache, DREAMSHAPER, skip=("unet/diffusion_pytorch_model.fp16.safetensors", "tokenizer/merges.txt"))
    with pytest.raises(IncompleteSnapshotError) as caught:
        hub.resolve_model(DREAMSHAPER, engine=IMG2IMG, cache_dir=hub_cache())
    message = str(caught.value)
    assert "unet/diffusion_pytorch_model.safetensors" in message
    assert "tokenizer/merges.txt" in message
    assert COMMAND in message
    ok, reason = hub.check_available(IMG2IMG, DREAMSHAPER, cache_dir=hub_cache())
    assert not ok and "incomplete" in reason and COMMAND in reason


def test_partial_local_folder_says_what_to_copy(tmp_path):
    folder = write_layout(tmp_path / "model", FULL_LAYOUT, skip=("scheduler/scheduler_config.json",))
    with pytest.raises(IncompleteSnapshotError, match="scheduler/scheduler_config.json"):
        hub.resolve_model(str(folder), engine=IMG2IMG, cache_dir=hub_cache())


def test_pickle_only_folder_is_refused(tmp_path):
    files = [f for f in FULL_LAYOUT if not f.startswith("unet/diffusion")] + ["unet/diffusion_pytorch_model.bin"]
    folder = write_layout(tmp_path / "model", files)
    with pytest.raises(UnsafeWeightsError) as caught:
        hub.resolve_model(str(folder), engine=IMG2IMG, cache_dir=hub_cache())
    assert "diffusion_pytorch_model.bin" in str(caught.value)
    assert "safetensors" in str(caught.value)


def test_pickle_checkpoint_file_is_refused(tmp_path):
    checkpoint = tmp_path / "model.ckpt"
    checkpoint.write_bytes(b"not really")
    with pytest.raises(UnsafeWeightsError, match="pickle"):
        hub.resolve_model(str(checkpoint), engine=IMG2IMG, cache_dir=hub_cache())


def test_single_safetensors_file_needs_a_tokenizer(tmp_path):
    checkpoint = tmp_path / "anime.safetensors"
    checkpoint.write_bytes(b"{}")
    with pytest.raises(WeightsNotFoundError, match="tokenizer"):
        hub.resolve_model(str(checkpoint), engine=IMG2IMG, cache_dir=hub_cache())
    write_layout(tmp_path, ["tokenizer/vocab.json", "tokenizer/merges.txt"])
    assert hub.resolve_model(str(checkpoint), engine=IMG2IMG, cache_dir=hub_cache()) == checkpoint
    with pytest.raises(InvalidParameterError):
        hub.resolve_model(str(checkpoint), engine=LATENT, cache_dir=hub_cache())


def test_single_file_uses_a_cached_tokenizer(tmp_path, hf_cache):
    fake_snapshot(hf_cache, "openai/clip-vit-large-patch14", files=("vocab.json", "merges.txt"))
    checkpoint = tmp_path / "anime.safetensors"
    checkpoint.write_bytes(b"{}")
    assert hub.resolve_model(str(checkpoint), engine=IMG2IMG, cache_dir=hub_cache()) == checkpoint
    assert hub.find_tokenizer(checkpoint, engine=IMG2IMG, cache_dir=hub_cache()).name != "tokenizer"


def test_folder_without_model_index_points_at_its_checkpoint(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"{}")
    with pytest.raises(WeightsNotFoundError, match="x.safetensors"):
        hub.resolve_model(str(tmp_path), engine=IMG2IMG, cache_dir=hub_cache())


def test_missing_local_path_is_not_taken_for_a_hub_id(tmp_path, monkeypatch):
    missing = str(tmp_path / "nope" / "model")
    monkeypatch.setenv("CNAPS_SD_MODEL", missing)  # the hint must not suggest the broken setting
    with pytest.raises(WeightsNotFoundError, match="neither an existing file") as caught:
        hub.resolve_model(missing, engine=IMG2IMG, cache_dir=hub_cache())
    assert "such as Lykon/dreamshaper-8" in str(caught.value)


def test_sharded_weights_need_every_shard(tmp_path):
    files = [f for f in FULL_LAYOUT if not f.startswith("unet/diffusion")]
    folder = write_layout(tmp_path / "model", files)
    index = {
        "weight_map": {
            "a": "diffusion_pytorch_model-00001-of-00002.safetensors",
            "b": "diffusion_pytorch_model-00002-of-00002.safetensors",
        }
    }
    (folder / "unet" / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "unet" / "diffusion_pytorch_model-00001-of-00002.safetensors").write_text("")
    with pytest.raises(IncompleteSnapshotError, match="unet/"):
        hub.resolve_model(str(folder), engine=IMG2IMG, cache_dir=hub_cache())
    (folder / "unet" / "diffusion_pytorch_model-00002-of-00002.safetensors").write_text("")
    assert hub.resolve_model(str(folder), engine=IMG2IMG, cache_dir=hub_cache()) == folder


def test_offline_download_raises_a_typed_error():
    with pytest.raises(WeightsNotFoundError) as caught:
        download(IMG2IMG, DREAMSHAPER, cache_dir=hub_cache(), offline=get_settings().hub_offline)
    assert "HF_HUB_OFFLINE" in str(caught.value)


def test_offline_download_of_a_cached_model_returns_it(hf_cache):
    snapshot = fake_snapshot(hf_cache, DREAMSHAPER)
    assert download(IMG2IMG, DREAMSHAPER, cache_dir=hub_cache(), offline=get_settings().hub_offline) == snapshot


def test_download_of_a_local_folder_checks_it(tmp_path):
    folder = write_layout(tmp_path / "model", FULL_LAYOUT)
    assert download(IMG2IMG, str(folder), cache_dir=hub_cache(), offline=get_settings().hub_offline) == folder


def test_download_fetches_only_the_needed_files_at_the_pinned_revision(hf_cache, monkeypatch, capsys):
    """The Hub client is replaced (no network): we check what download() asks it for."""
    import huggingface_hub

    listing = list(FULL_LAYOUT) + [
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "safety_checker/model.safetensors",
        "dreamshaper_8.safetensors",
    ]
    # `download sd-img2img` fetches the tile ControlNet too: its repository has its own listing.
    controlnet_listing = ["config.json", "diffusion_pytorch_model.bin", "diffusion_pytorch_model.fp16.safetensors"]
    calls = {}

    def list_repo_files(self, repo_id, *, revision=None, **kwargs):
        calls["listed" if repo_id == DREAMSHAPER else "controlnet_listed"] = (repo_id, revision)
        return listing if repo_id == DREAMSHAPER else controlnet_listing

    def snapshot_download(repo_id, *, revision=None, cache_dir=None, allow_patterns=None, **kwargs):
        key = "fetched" if repo_id == DREAMSHAPER else "controlnet_fetched"
        calls[key] = (repo_id, revision, Path(cache_dir), sorted(allow_patterns))
        return str(fake_snapshot(Path(cache_dir), repo_id, files=allow_patterns, revision=revision))

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.HfApi, "list_repo_files", list_repo_files)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    pinned = IMG2IMG.published_revision
    assert cli_main(["download", "sd-img2img"]) == 0
    assert calls["listed"] == (DREAMSHAPER, pinned)
    repo, revision, cache, patterns = calls["fetched"]
    assert (repo, revision, cache) == (DREAMSHAPER, pinned, hf_cache)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in patterns
    assert not [p for p in patterns if "safety_checker" in p or p.endswith(".bin") or p == "dreamshaper_8.safetensors"]
    assert "unet/diffusion_pytorch_model.safetensors" not in patterns
    assert "is ready in" in capsys.readouterr().out
    assert calls["controlnet_fetched"][0] == "lllyasviel/control_v11f1e_sd15_tile"
    assert calls["controlnet_fetched"][3] == ["config.json", "diffusion_pytorch_model.fp16.safetensors"]


def test_download_command_rejects_other_engines(capsys):
    assert cli_main(["download", "realcugan"]) == 2  # a bad command
    assert "sd-img2img" in capsys.readouterr().err  # the hint names the engines that fetch weights


def test_allow_patterns_pick_fp16_where_published_and_skip_the_rest():
    listing = [
        "model_index.json",
        "README.md",
        "dreamshaper_8.safetensors",
        "scheduler/scheduler_config.json",
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "tokenizer/special_tokens_map.json",
        "tokenizer/tokenizer_config.json",
        "feature_extractor/preprocessor_config.json",
        "safety_checker/config.json",
        "safety_checker/model.safetensors",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
        "text_encoder/model.fp16.safetensors",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.non_ema.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.bin",
    ]
    patterns = allow_patterns_for(listing)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in patterns
    assert "text_encoder/model.fp16.safetensors" in patterns
    assert "vae/diffusion_pytorch_model.safetensors" in patterns  # no fp16 published: full precision
    assert "unet/diffusion_pytorch_model.safetensors" not in patterns
    assert not [p for p in patterns if p.endswith(".bin") or "non_ema" in p or "safety_checker" in p]
    assert "dreamshaper_8.safetensors" not in patterns
    assert {"model_index.json", "scheduler/scheduler_config.json", "tokenizer/vocab.json"} <= set(patterns)


def test_allow_patterns_refuse_pickle_only_components():
    listing = [
        "model_index.json",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json",
        "text_encoder/model.safetensors",
    ]
    with pytest.raises(UnsafeWeightsError, match="unet"):
        allow_patterns_for(listing)


def test_hub_import_and_checks_stay_light():
    code = (
        "import sys; from cnaps_demo.engines import get_engine; from cnaps_demo.engines.diffusion import download, hub;"
        "hub.check_available(get_engine('sd-img2img'), 'Lykon/dreamshaper-8', cache_dir=None);"
        "print([m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
