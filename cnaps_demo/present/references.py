"""The sources the explanation cites, as data. Nothing else may be linked from the answer.

The engines' own credits (models and tools that actually run) live on each engine as
``Engine.credits`` and are shown in a separate "Engines and licences" section.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Link:
    label: str
    url: str


@dataclass(frozen=True)
class Reference:
    key: str
    title: str
    short: str  # how the text refers to it
    kind: str  # "model" | "paper"
    summary: str  # one or two sentences, in our own words
    why_here: str  # what it tells us about "crisp anime upscales"
    links: tuple[Link, ...]
    has_code: bool = False
    tagline: str = ""  # a few words for a skimming reader: what it shows here


RECOMMENDED_SD_MODEL_ID = "Lykon/dreamshaper-8"

DREAMSHAPER = Reference(
    key="dreamshaper",
    title="Txt2Img-StableDiffusionV1-DreamShaper",
    short="DreamShaper",
    kind="model",
    summary=(
        "DreamShaper is a fine-tune of Stable Diffusion 1.5 that is good at illustration and "
        f"anime styles; the diffusion engines here default to its Hub release `{RECOMMENDED_SD_MODEL_ID}`."
    ),
    why_here=(
        "The linked Stable Diffusion 1.5 code base points out that img2img is not only for new "
        "pictures: running it on an enlarged image is a way to upscale samples."
    ),
    links=(Link("code base (Stable Diffusion 1.5)", "https://github.com/Kameronski/stable-diffusion-1.5"),),
    has_code=True,
    tagline="the Stable Diffusion 1.5 fine-tune the diffusion path uses; img2img can upscale.",
)

UMAIR_FPS = Reference(
    key="umair-fps",
    title=("UMAIR-FPS: User-aware Multi-modal Animation Illustration Recommendation Fusion with Painting Style"),
    short="UMAIR-FPS",
    kind="paper",
    summary=(
        "A recommender for anime illustrations whose image encoder has two outputs: one for "
        "painting style and one for content."
    ),
    why_here=(
        "It shows that the painting style of anime art (line quality, flat shading, colour "
        "choices) is a distinct signal a network can learn. That learned style is the kind "
        "of prior a model leans on when it re-draws soft edges as crisp line art."
    ),
    links=(
        Link("arXiv", "https://arxiv.org/abs/2402.10381"),
        Link("PDF", "http://arxiv.org/pdf/2402.10381v2.pdf"),
        Link("code", "https://github.com/oysterqaq/umair-fps"),
    ),
    has_code=True,
    tagline="the painting style of anime art is a signal a network can learn.",
)

ARTXAI = Reference(
    key="artxai",
    title=(
        "ARTxAI: Explainable Artificial Intelligence Curates Deep Representation Learning "
        "for Artistic Images using Fuzzy Techniques"
    ),
    short="ARTxAI",
    kind="paper",
    summary=(
        "Features a network learns for one task on artworks carry over to other artistic "
        "tasks, and fuzzy rules can tie those features to traits a person can see."
    ),
    why_here=(
        "A route to asking which visual traits (edges, colour regions, texture) a model "
        "actually relies on, instead of trusting that its crisp output is right."
    ),
    links=(
        Link("arXiv", "https://arxiv.org/abs/2308.15284"),
        Link("PDF", "http://arxiv.org/pdf/2308.15284v1.pdf"),
    ),
    tagline="asks which visual traits a network relies on.",
)

REAL = Reference(
    key="real",
    title="REAL: Realism Evaluation of Text-to-Image Generation Models for Effective Data Augmentation",
    short="REAL",
    kind="paper",
    summary=(
        "Scores generated images on fine-grained attributes, unusual relationships between "
        "objects, and style, rather than on overall looks."
    ),
    why_here=(
        "Generative sharpness is invented detail. Whether it is faithful has to be checked "
        "(here: against a ground truth), not assumed from how crisp it looks."
    ),
    links=(
        Link("arXiv", "https://arxiv.org/abs/2502.10663"),
        Link("PDF", "http://arxiv.org/pdf/2502.10663v1.pdf"),
    ),
    tagline="generated detail must be checked for faithfulness, not assumed.",
)

REFERENCES: tuple[Reference, ...] = (DREAMSHAPER, UMAIR_FPS, ARTXAI, REAL)


def reference_urls() -> frozenset[str]:
    """Every URL the explanation is allowed to link to."""
    return frozenset(link.url for ref in REFERENCES for link in ref.links)


def get_reference(key: str) -> Reference:
    for ref in REFERENCES:
        if ref.key == key:
            return ref
    raise KeyError(key)
