"""The GPU benchmark's full-size SD 1.5 architecture and the script itself, checked on the CPU.

The configs kept in the repo must describe the real models (else the GPU figures would time
some other network); the parameter counts of SD 1.5's parts are public facts. The script is
run in its tiny mode so that it cannot rot between GPU sessions.
"""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Parameter counts of the published Stable Diffusion 1.5 components.
SD15_UNET_PARAMS = 859_520_964
SD15_VAE_PARAMS = 83_653_863
SD15_TEXT_ENCODER_PARAMS = 123_060_480


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_repo_configs_build_the_full_size_sd15_architecture():
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from cnaps_demo.engines import get_engine
    from cnaps_demo.engines.diffusion.hub import CONFIG_DIR

    assert get_engine("sd-img2img").unet_configs == CONFIG_DIR
    latent_configs = get_engine("sd-latent-x2").unet_configs
    with torch.device("meta"):  # shapes only: no memory, no time
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(CONFIG_DIR, subfolder="unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(CONFIG_DIR, subfolder="vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(CONFIG_DIR, subfolder="text_encoder"))
        latent_unet = UNet2DConditionModel.from_config(
            UNet2DConditionModel.load_config(latent_configs, subfolder="unet")
        )
    assert count(unet) == SD15_UNET_PARAMS
    assert count(vae) == SD15_VAE_PARAMS
    assert count(text) == SD15_TEXT_ENCODER_PARAMS
    assert unet.config.cross_attention_dim == text.config.hidden_size == 768
    # the x2 latent upscaler's UNet takes the noisy latent plus the low-res latent (4 + 4 channels)
    assert latent_unet.config.in_channels == 8 and latent_unet.config.out_channels == 5
    assert count(latent_unet) > 300_000_000  # a full-size network, not a tiny test model


@pytest.mark.slow
def test_gpu_benchmark_script_runs_in_tiny_mode(tmp_path):
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_sd_gpu.py", "--device", "cpu", "--tiny", "--models", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "sd-img2img [ours]" in out and "UNet x10 with CFG" in out
    assert "plain diffusers" in out and "ours/plain" in out
    assert "sd-latent-x2 [ours]" in out
    assert "sd-img2img + ControlNet tile [ours]" in out and "ControlNet " in out
    assert "filmstrip preview:" in out and "ms per UNet step (10 frames" in out
    assert "colour fix (" in out or "colour fix: cnaps_demo.colour not present" in out
    assert "unmeasured on GPU" in out
