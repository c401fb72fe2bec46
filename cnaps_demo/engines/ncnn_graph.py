"""TEMPORARY shim: the ncnn reader moved to :mod:`cnaps_demo.ncnn`. Import from there.

Re-exports only what existing importers use; delete once they import ``cnaps_demo.ncnn``.
"""

from __future__ import annotations

from ..ncnn import NcnnGraphError, build_module, expected_weight_names, parse_param, read_bin

__all__ = ["NcnnGraphError", "build_module", "expected_weight_names", "parse_param", "read_bin"]
