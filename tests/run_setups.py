"""The page's run setup (``web.runs.RunSetup``) as a test builds it: local files only, a work folder,
and optionally the example cache and the result store (what ``ui.build_demo`` gives a page)."""

from __future__ import annotations

from pathlib import Path

from cnaps_demo.present.result_cache import ExampleCache
from cnaps_demo.settings import Settings
from cnaps_demo.web.requests import RequestReader
from cnaps_demo.web.result_store import ResultStore
from cnaps_demo.web.runs import RunSetup
from cnaps_demo.web.untrusted import LocalFiles
from cnaps_demo.web.workdir import Workdir


def run_setup(
    settings: Settings,
    folder: Path,
    *,
    gpu_ids: frozenset[str] = frozenset(),
    cache: ExampleCache | None = None,
    results: ResultStore | None = None,
) -> RunSetup:
    return RunSetup(settings, RequestReader(settings, gpu_ids, []), LocalFiles(), Workdir(folder), cache, results)
