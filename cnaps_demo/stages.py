"""Stage records: what ran, on which shapes, for how long. The diagram draws these."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

Shape = tuple[int, ...]

# progress(done, total, description). It may raise JobCancelledError to cancel a job.
ProgressFn = Callable[[int, int, str], None]


@dataclass(frozen=True)
class StageRecord:
    name: str
    input_shape: Shape
    output_shape: Shape
    seconds: float
    # Extra facts worth drawing (e.g. {"steps": 8, "strength": 0.3, "scheduler": "DPM++"}).
    detail: dict[str, Any] = field(default_factory=dict)
    # Optional small picture of what this stage produced (a PIL image, about 160 px a side at most),
    # e.g. the SD latent previewed as RGB; the diagram draws it. Not compared, not in as_dict().
    preview: Any = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "seconds": round(self.seconds, 4),
            "detail": dict(self.detail),
        }


class StageRecorder:
    """Collects stage records; ``with recorder.stage(name, in_shape) as out:`` times a block.

    Set ``out.shape`` (and optionally ``out.detail``, ``out.preview``) inside the block.
    """

    class _Open:
        def __init__(self) -> None:
            self.shape: Shape = ()
            self.detail: dict[str, Any] = {}
            self.preview: Any = None  # optional small PIL image of the stage's result

    def __init__(self) -> None:
        self.records: list[StageRecord] = []

    @contextmanager
    def stage(self, name: str, input_shape: Shape, **detail: Any) -> Iterator["StageRecorder._Open"]:
        handle = self._Open()
        handle.detail.update(detail)
        start = time.perf_counter()
        yield handle
        self.records.append(
            StageRecord(
                name,
                tuple(input_shape),
                tuple(handle.shape),
                time.perf_counter() - start,
                handle.detail,
                handle.preview,
            )
        )

    def add(self, record: StageRecord) -> None:
        self.records.append(record)


def no_progress(done: int, total: int, description: str) -> None:
    """Default progress callback: does nothing."""
