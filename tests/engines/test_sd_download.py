"""Weights on first use, fetched through huggingface_hub's own client from a loopback Hub.

``hub_server.HubServer`` serves tiny random models (tests/tiny_sd.py) in the Hub's HTTP layout
on 127.0.0.1; ``HF_ENDPOINT`` points the app at it. Nothing reaches the network. Also here:
who may cause a download (the operator's allowlist and switches) and the ZeroGPU duration.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import tiny_sd
from cnaps_demo.cli import main as cli_main
from cnaps_demo.engines import get_engine
from cnaps_demo.engines.base import RunOptions
from cnaps_demo.engines.diffusion import (
    allowed_downloads,
    ensure_weights,
    estimate_gpu_seconds,
    hub,
    may_download,
    release_pipelines,
    spaces_duration,
)
from cnaps_demo.engines.diffusion.download import download
from cnaps_demo.errors import UnsafeWeightsError, WeightsNotFoundError
from cnaps_demo.settings import get_settings
from hub_server import COMMIT, HubServer

IMG2IMG = get_engine("sd-img2img")
SD_REPO, CN_REPO, PICKLED_REPO = "tiny/anime-sd", "tiny/tile-cn", "tiny/pickled-cn"


@pytest.fixture(scope="module")
def repos(tmp_path_factory):
    """Repository folders as the Hub holds them, with files that must never be fetched."""
    root = tmp_path_factory.mktemp("hub-repos")
    sd = tiny_sd.build_img2img_folder(root)
    (sd / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle: never fetched")
    (sd / "safety_checker").mkdir()
    (sd / "safety_checker" / "model.safetensors").write_bytes(b"never fetched")
    cn = tiny_sd.build_controlnet_folder(root)
    (cn / "diffusion_pytorch_model.bin").write_bytes(b"pickle: never fetched")
    pickled = root / "pickled"
    pickled.mkdir()
    shutil.copy(cn / "config.json", pickled / "config.json")
    (pickled / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    yield {SD_REPO: sd, CN_REPO: cn, PICKLED_REPO: pickled}
    release_pipelines()


@pytest.fixture()
def server(repos, tmp_path, monkeypatch):
    import huggingface_hub.constants

    with HubServer(repos) as running:
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # conftest set it at import
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setenv("HF_ENDPOINT", running.url)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        for name in ("CNAPS_SD_MODEL", "CNAPS_SD_CONTROLNET", "CNAPS_ALLOW_DOWNLOADS", "CNAPS_ALLOW_CPU_DIFFUSION"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("CNAPS_WEB_MODELS", f"{SD_REPO},{CN_REPO},{PICKLED_REPO}")
        yield running


def fetched_files(server):
    return sorted(path.split("/resolve/", 1)[1].split("/", 1)[1] for method, path in server.requests
                  if method == "GET" and "/resolve/" in path)


def web_params(**overrides):
    values = {"model": SD_REPO, "controlnet": CN_REPO, "steps": 4, "strength": 0.5, "pre_upscaler": "lanczos"}
    return IMG2IMG.check_params({**values, **overrides})


def test_download_through_the_hub_client_with_byte_progress(server, monkeypatch):
    # A published model is fetched at the commit its engine pins it to.
    monkeypatch.setattr(type(IMG2IMG), "published_model", SD_REPO)
    monkeypatch.setattr(type(IMG2IMG), "published_revision", COMMIT)
    settings = get_settings()
    seen = []
    folder = download(
        IMG2IMG, SD_REPO, lambda done, total, text: seen.append((done, total, text)),
        cache_dir=settings.hub_cache, endpoint=settings.hub_endpoint,
    )
    assert folder.name == COMMIT and folder.is_relative_to(settings.hub_cache)
    files = fetched_files(server)
    assert "unet/diffusion_pytorch_model.safetensors" in files and "model_index.json" in files
    assert not [f for f in files if f.endswith(".bin") or f.startswith("safety_checker")]
    assert all(f"/{COMMIT}/" in path for method, path in server.requests if "/resolve/" in path)
    expected = sum((server.repos[SD_REPO] / f).stat().st_size for f in files)
    assert seen and seen[-1][0] == expected == max(done for done, _, _ in seen)
    assert all(total >= done for done, total, _ in seen) and "tiny/anime-sd" in seen[-1][2]
    assert hub.resolve_model(SD_REPO, engine=IMG2IMG, cache_dir=settings.hub_cache) == folder


def test_a_gpu_server_fetches_model_and_controlnet_on_first_use_then_runs(server):
    settings = get_settings()
    params = web_params()
    ok, reason = IMG2IMG.available(params, RunOptions(device="cpu", hub_cache=settings.hub_cache))
    assert not ok and "not in the Hugging Face cache" in reason
    assert may_download(IMG2IMG, params, settings=settings, device="cuda").ok
    events = []
    fetched = ensure_weights(
        IMG2IMG, params, settings=settings, device="cuda", progress=lambda *e: events.append(e)
    )
    assert len(fetched) == 2 and {e[2] for e in events} == {f"downloading {SD_REPO}", f"downloading {CN_REPO}"}
    assert "diffusion_pytorch_model.safetensors" in fetched_files(server)  # the ControlNet's weights
    # Fetched once: now it runs from the cache through the real loading code (here on the CPU).
    options = RunOptions(device="cpu", hub_cache=settings.hub_cache)
    assert IMG2IMG.available(params, options).ok
    output = IMG2IMG.run(tiny_sd.noise_image(16, 16), scale=2, params=params, options=options)
    assert output.image.size == (32, 32) and any(s.name.startswith("ControlNet tile") for s in output.stages)
    before = len(server.requests)
    assert ensure_weights(IMG2IMG, params, settings=settings, device="cuda") == []
    assert len(server.requests) == before  # nothing missing, nothing asked


def test_only_what_the_operator_allows_is_fetched(server, monkeypatch):
    settings = get_settings()
    allowed = set(allowed_downloads(IMG2IMG, settings))
    assert {"Lykon/dreamshaper-8", "lllyasviel/control_v11f1e_sd15_tile", SD_REPO} <= allowed
    monkeypatch.setenv("CNAPS_WEB_MODELS", "")
    settings = get_settings()
    ok, reason = may_download(IMG2IMG, web_params(), settings=settings, device="cuda")
    assert not ok and "only the models its operator allows" in reason and "CNAPS_WEB_MODELS" in reason
    with pytest.raises(WeightsNotFoundError):
        ensure_weights(IMG2IMG, web_params(), settings=settings, device="cuda")
    assert server.requests == []  # refused before anything was asked of the Hub


def test_switches_forbid_downloads(server, monkeypatch):
    ok, reason = may_download(IMG2IMG, web_params(), settings=get_settings(), device="cpu")
    assert not ok and "no GPU" in reason  # a CPU server never fetches them
    monkeypatch.setenv("CNAPS_ALLOW_CPU_DIFFUSION", "1")
    assert may_download(IMG2IMG, web_params(), settings=get_settings(), device="cpu").ok
    monkeypatch.setenv("CNAPS_ALLOW_DOWNLOADS", "0")
    ok, reason = may_download(IMG2IMG, web_params(), settings=get_settings(), device="cuda")
    assert not ok and "CNAPS_ALLOW_DOWNLOADS=0" in reason and "preload_from_hub" in reason
    assert cli_main(["download", "sd-img2img", "--model", SD_REPO]) == 1
    monkeypatch.setenv("CNAPS_ALLOW_DOWNLOADS", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ok, reason = may_download(IMG2IMG, web_params(), settings=get_settings(), device="cuda")
    assert not ok and "HF_HUB_OFFLINE" in reason
    assert server.requests == []


def test_pickle_only_controlnet_is_never_fetched(server):
    with pytest.raises(UnsafeWeightsError, match="safetensors"):
        ensure_weights(IMG2IMG, web_params(controlnet=PICKLED_REPO), settings=get_settings(), device="cuda")
    assert not [f for f in fetched_files(server) if f.endswith(".bin")]


def test_cli_download_fetches_the_controlnet_too(server, capsys):
    assert cli_main(["download", "sd-img2img", "--model", SD_REPO, "--controlnet", CN_REPO]) == 0
    out = capsys.readouterr().out
    assert f"{SD_REPO} for sd-img2img is ready" in out and f"ControlNet {CN_REPO} for sd-img2img is ready" in out
    assert IMG2IMG.available(web_params(), RunOptions(device="cpu", hub_cache=get_settings().hub_cache)).ok


def test_zero_gpu_duration_grows_with_the_job_and_stays_in_bounds():
    small = spaces_duration(256, 256, engine=IMG2IMG)
    default = spaces_duration(512, 512, engine=IMG2IMG)
    large = spaces_duration(1024, 1024, engine=IMG2IMG)
    assert isinstance(default, int) and 20 <= small <= default < large <= 300
    assert spaces_duration(512, 512, {"steps": 50, "strength": 0.6}, engine=IMG2IMG) > default
    assert spaces_duration(512, 512, {"controlnet": "none"}, engine=IMG2IMG) < default
    assert spaces_duration(4096, 4096, engine=IMG2IMG) == 300
    assert estimate_gpu_seconds(512, 512, engine=IMG2IMG, loaded=True) < estimate_gpu_seconds(512, 512, engine=IMG2IMG)
    assert spaces_duration(512, 512, engine=get_engine("sd-latent-x2")) >= 20
    assert np.isfinite(estimate_gpu_seconds(64, 64, {"pre_upscaler": "lanczos"}, engine=IMG2IMG))


def test_the_page_fetches_the_weights_on_first_use_in_its_progress_bar_then_runs(server, monkeypatch, tmp_path):
    """What a first visitor of a GPU Space gets (the CPU stands in for the GPU here)."""
    from cnaps_demo.web import picker
    from cnaps_demo.web.running import run_engine
    from cnaps_demo.web.sources import load_source
    from cnaps_demo.web.untrusted import LocalFiles

    monkeypatch.setenv("CNAPS_ALLOW_CPU_DIFFUSION", "1")
    monkeypatch.setenv("CNAPS_SD_MODEL", SD_REPO)
    monkeypatch.setenv("CNAPS_SD_CONTROLNET", CN_REPO)
    settings = get_settings()
    assert not IMG2IMG.available(IMG2IMG.check_params({}, settings), RunOptions(hub_cache=settings.hub_cache)).ok
    assert picker.fetched_on_first_use(IMG2IMG, settings) and "sd-img2img" in picker.runnable_ids([IMG2IMG], settings)
    card = picker.engine_card_html("sd-img2img", settings)
    assert "download once" in card and "cannot run" not in card
    assert "not on this server" not in picker.engine_label(IMG2IMG, settings)
    picture = tmp_path / "in.png"
    tiny_sd.noise_image(16, 16).save(picture)
    source = load_source(str(picture), settings, False, guard=LocalFiles())
    steps = []
    params = {"steps": 4, "strength": 0.5, "pre_upscaler": "lanczos"}
    result = run_engine(source, IMG2IMG, params, settings=settings, progress=lambda *step: steps.append(step))
    assert result.image.size == (32, 32)
    downloads = [text for _, _, text in steps if "downloading" in text]
    assert downloads and any(SD_REPO in text for text in downloads) and any(CN_REPO in text for text in downloads)
    assert all("MB" in text and "(once)" in text for text in downloads)
    assert "diffusion_pytorch_model.safetensors" in fetched_files(server)
    before = len(server.requests)
    run_engine(source, IMG2IMG, params, settings=settings, progress=lambda *step: None)
    assert len(server.requests) == before  # the second visitor downloads nothing
