"""Tiny, seeded Stable Diffusion components for CPU tests (and the benchmark's --tiny mode).

Nothing is downloaded: the CLIP tokenizer files (vocab.json, merges.txt) are written here from
a character-level vocabulary, and every model gets random weights from a fixed seed. The
pipelines are put together by the package's own ``assemble_pipeline`` and saved with
``save_pretrained`` (safetensors) so the engines load them through their real loading code
(``model=str(folder)``).
"""

from __future__ import annotations

import json
import string
from pathlib import Path

from cnaps_demo.engines.diffusion import SDImg2ImgEngine, SDLatentX2Engine, assemble_pipeline

BOS, EOS = "<|startoftext|>", "<|endoftext|>"


def write_tiny_tokenizer(folder: Path) -> Path:
    """A character-level CLIP BPE tokenizer (no merges) with model_max_length 77."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab: dict[str, int] = {}
    for symbol in symbols:
        vocab[symbol] = len(vocab)
    for symbol in symbols:
        vocab[symbol + "</w>"] = len(vocab)
    vocab[BOS] = len(vocab)
    vocab[EOS] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    config = {"model_max_length": 77, "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def tiny_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(write_tiny_tokenizer(folder)))


def tiny_text_encoder(tokenizer, seed: int = 0, hidden: int = 32):
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        projection_dim=hidden,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(config).eval()


def sd15_scheduler_config() -> dict:
    return {
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "num_train_timesteps": 1000,
        "steps_offset": 1,
        "set_alpha_to_one": False,
        "skip_prk_steps": True,
    }


def build_img2img_folder(folder: Path, seed: int = 0, *, smooth: bool = False) -> Path:
    """A tiny SD 1.5-shaped img2img pipeline saved to ``folder`` (UNet 16/32, VAE 8/16/16 = 4x, CLIP 32-d).

    ``smooth=True`` makes the output a smooth function of a smooth input, for seam tests: the
    VAE posterior has (almost) no variance and the noise schedule almost no noise, so what is
    left is the random encoder/decoder convolutions, edge effects included.
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel

    folder = Path(folder)
    tokenizer = tiny_tokenizer(folder / "_tokenizer_src")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
    )
    scheduler_config = sd15_scheduler_config()
    if smooth:
        with torch.no_grad():
            vae.quant_conv.weight[4:] = 0  # log-variance half of the posterior: exp(-30) -> no sampling noise
            vae.quant_conv.bias[4:] = -30.0
        scheduler_config.update(beta_start=1e-6, beta_end=2e-6)  # sigma < 0.04; about 0.007 at t=50
    text_encoder = tiny_text_encoder(tokenizer, seed + 2)
    pipe = assemble_pipeline(
        SDImg2ImgEngine,
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=PNDMScheduler(**scheduler_config),
    )
    target = folder / ("tiny-sd-img2img-smooth" if smooth else "tiny-sd-img2img")
    pipe.save_pretrained(target, safe_serialization=True)
    return target


def build_controlnet_folder(folder: Path, seed: int = 0) -> Path:
    """A tiny ControlNet that fits ``build_img2img_folder``'s UNet (16/32 channels, 32-d text, 4x latents).

    A real ControlNet starts with zero "zero convolutions" (it adds nothing until trained); these
    get small random weights instead, so a test can see that the condition picture reaches the UNet.
    """
    import torch
    from diffusers import ControlNetModel

    torch.manual_seed(seed + 7)
    model = ControlNetModel(
        in_channels=4,
        block_out_channels=(16, 32),
        layers_per_block=1,
        norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        conditioning_embedding_out_channels=(8, 8, 16),  # two stride-2 steps: the tiny VAE's 4x
    )
    with torch.no_grad():
        embedding_out = model.controlnet_cond_embedding.conv_out
        for conv in [*model.controlnet_down_blocks, model.controlnet_mid_block, embedding_out]:
            torch.nn.init.normal_(conv.weight, std=0.2)
    target = Path(folder) / "tiny-controlnet-tile"
    model.save_pretrained(target, safe_serialization=True)
    return target


def build_latent_upscaler_folder(folder: Path, seed: int = 0) -> Path:
    """A tiny x2 latent upscaler: k-diffusion UNet (8 -> 5 channels, 160-d time condition)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel

    folder = Path(folder)
    tokenizer = tiny_tokenizer(folder / "_tokenizer_src")
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        act_fn="gelu",
        attention_head_dim=8,
        norm_num_groups=None,
        block_out_channels=(32, 32, 64, 64),
        time_cond_proj_dim=160,  # 128 noise-level features + 32-d pooled text embedding
        conv_in_kernel=1,
        conv_out_kernel=1,
        cross_attention_dim=32,
        down_block_types=("KDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D", "KCrossAttnDownBlock2D"),
        in_channels=8,
        mid_block_type=None,
        only_cross_attention=False,
        out_channels=5,
        resnet_time_scale_shift="scale_shift",
        time_embedding_type="fourier",
        timestep_post_act="gelu",
        up_block_types=("KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KCrossAttnUpBlock2D", "KUpBlock2D"),
    )
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        sample_size=32,
    )
    text_encoder = tiny_text_encoder(tokenizer, seed + 2)
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", prediction_type="sample"
    )
    pipe = assemble_pipeline(
        SDLatentX2Engine, unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler
    )
    target = folder / "tiny-sd-latent-x2"
    pipe.save_pretrained(target, safe_serialization=True)
    return target


def gradient_image(width: int, height: int):
    """A smooth diagonal colour gradient (no edges), as a PIL RGB image."""
    import numpy as np
    from PIL import Image

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    red = x / max(1, width - 1)
    green = y / max(1, height - 1)
    blue = (x + y) / max(1, width + height - 2)
    pixels = np.stack([red, green, blue], axis=-1)
    return Image.fromarray((pixels * 255 + 0.5).astype(np.uint8), "RGB")


def noise_image(width: int, height: int, seed: int = 3):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")
