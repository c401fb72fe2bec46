"""What a web visitor reads when something goes wrong: our errors in words fit for the web.

The message keeps the library's "what went wrong + how to fix it" text, made fit for the web
(``web_text``: no server paths, no markup); setup advice meant for whoever runs the server goes
to the log instead. ``ui.messages`` shows these words as Gradio's toasts.
"""

from __future__ import annotations

import logging
import re

from ..errors import (
    CnapsError,
    EngineUnavailableError,
    ImageTooLargeError,
    InvalidImageError,
    InvalidParameterError,
    JobCancelledError,
    NoImageError,
    UnknownEngineError,
)

log = logging.getLogger(__name__)

MB = 1024 * 1024
OPERATOR_NOTE = "Whoever runs this server can set it up; the server log says how."
# The operator's one line on an engine card: where the how-to is (the commands live in the README).
OPERATOR_HOW = 'the README\'s "Stable Diffusion" section says how to set this up; the server log names what is missing.'

# An absolute path of two or more parts (not "1/255", not a URL's path): the server's own business.
_SERVER_PATH = re.compile(r"(?<![\w.~:/])/(?:[^\s'\"()<>,;/]+/)+([^\s'\"()<>,;/]*)")


class PageRefusal(CnapsError):
    """A request the page refuses in its own words (already fit for a visitor), under ``title``."""

    title = "Error"


class WrongEndpointError(PageRefusal, InvalidParameterError):
    title = "Wrong endpoint"


class NothingToRunError(PageRefusal, InvalidParameterError):
    title = "Nothing to run"


class EnginesUnavailableError(PageRefusal, EngineUnavailableError):
    """Some of the engines asked for cannot run here: one line each, already in a visitor's words."""

    title = "Engine unavailable here"


def title_for(error: CnapsError) -> str:
    """The heading of ``error``'s toast."""
    if isinstance(error, PageRefusal):
        return error.title
    if isinstance(error, NoImageError):
        return "No image"
    if isinstance(error, ImageTooLargeError):
        return "Image too large"
    if isinstance(error, InvalidImageError):
        return "Cannot use this image"
    if isinstance(error, EngineUnavailableError):
        return "Engine unavailable here"
    if isinstance(error, (InvalidParameterError, UnknownEngineError)):
        return "Invalid setting"
    if isinstance(error, JobCancelledError):
        return "Stopped"
    return "Upscaling failed"


def web_text(text: str) -> str:
    """``text`` fit for a web visitor: server paths cut to their last part, no markup characters.

    Gradio shows toast text through an HTML sanitiser; angle brackets are swapped for look-alike
    quotes (escaping them would show entities such as ``&#x27;`` instead).
    """
    text = _SERVER_PATH.sub(lambda match: match.group(1) or "a server folder", text)
    return text.replace("<", "\u2039").replace(">", "\u203a")


def short_reason(reason: str, limit: int = 48) -> str:
    """A few words for a picker label; the status line shows the whole reason and its fix."""
    text = reason.lower()
    parts = []
    if "pip install" in text or "package" in text:
        parts.append("missing Python package")
    if "weights" in text or "download" in text:
        parts.append("weights not downloaded")
    if "gpu" in text or "cuda" in text:
        parts.append("needs a GPU")
    if parts:
        return " + ".join(parts)
    first = re.split(r"(?<=[.;:])\s", reason.strip(), maxsplit=1)[0].rstrip(".;:")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "\u2026"


def public_message(error: CnapsError) -> str:
    """What a web visitor reads: the problem and what *they* can do. Setup advice goes to the log."""
    if isinstance(error, EngineUnavailableError) and not isinstance(error, (JobCancelledError, PageRefusal)):
        log.warning("engine unavailable: %s", error)  # the operator's fix, without a traceback
        why = short_reason(error.hint or "")
        return web_text(f"{error.message.rstrip('.')} ({why}). {OPERATOR_NOTE}")
    return web_text(str(error))


def titled(title: str | None, text: str) -> str:
    """``"Image too large: ..."``: Gradio 6.31's toast shows only "Error" as its heading (it ignores
    ``title``), so the words that say what kind of problem it is lead the message itself."""
    if not title or text.lower().startswith(title.lower()):
        return text
    return f"{title}: {text}"


def toast_text(error: CnapsError) -> str:
    """``error`` as its toast reads: the kind of problem, then the visitor's words."""
    return titled(title_for(error), public_message(error))


def size_text(count: int) -> str:
    """``25 MB``, ``1.5 MB``, ``100 kB``: a limit as a visitor reads it."""
    if count >= MB:
        return f"{count / MB:.1f}".removesuffix(".0") + " MB"
    return f"{max(1, round(count / 1024))} kB"


def too_large_message(max_bytes: int) -> str:
    """The one answer to a file, a pasted picture or a request body over the upload limit."""
    return (
        f"This picture is larger than the {size_text(max_bytes)} this server accepts. "
        "Save it smaller (or as JPEG or WebP) and try again."
    )
