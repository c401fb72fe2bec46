"""Error answers in our words: what a malformed call, a refused path or a full lane reads as.

Gradio answers some calls itself before our handlers run, in words meant for a developer: a payload
naming a server file gets "Cannot move /the/path to the gradio cache dir ...", a call with too few
values lists Python object reprs, an unknown API name is an HTTP 500. ``limits.RequestLimits``
passes every error answer through ``rewritten_error`` and every exception a malformed call raises
through ``answer_of``, so a client reads one clear message (no server path, no 500), and a full
lane reads as "busy", not as a bad image.
"""

from __future__ import annotations

import json
import re
from typing import Any

from ..web.untrusted import NOT_UPLOADED_HINT, NOT_UPLOADED_MESSAGE
from ..web.words import too_large_message, web_text

BUSY_PREFIX = "The server is busy"
# gradio_client prints a refused validation as "- <parameter_name>: <message>": the lane is no parameter.
BUSY_PARAMETER = "queue"

_GRADIO_PATH_REFUSAL = re.compile(r"gradio cache dir|not in the cache folder|cannot be accessed", re.I)
_NOT_ENOUGH_INPUTS = re.compile(r"needed: (\d+), got: (\d+)")
READ_THE_API = "Client(url).view_api() in gradio_client lists each endpoint's inputs, in order."


def not_uploaded_text() -> str:
    return f"{NOT_UPLOADED_MESSAGE} {NOT_UPLOADED_HINT}"


def public_api_names(scope: dict) -> list[str]:
    """The API names this app offers (from the app in ``scope``; empty when it cannot tell)."""
    try:
        fns = scope["app"].get_blocks().fns.values()
        return [f"/{fn.api_name}" for fn in fns if fn.api_name and getattr(fn, "api_visibility", "public") == "public"]
    except (KeyError, AttributeError, TypeError):
        return []


def answer_of(error: BaseException, scope: dict) -> tuple[int, str, dict[str, str]] | None:
    """(status, message, headers) for an exception a malformed call raised in Gradio; None for any other."""
    from gradio.route_utils import FnIndexInferError

    if isinstance(error, (FnIndexInferError, KeyError, IndexError)):
        names = ", ".join(public_api_names(scope)) or "the ones /gradio_api/info lists"
        return 404, f"There is no such endpoint on this server. Its API endpoints are: {names}.", {}
    if isinstance(error, (TypeError, ValueError)):
        return 400, f"This call could not be read. {READ_THE_API}", {}
    return None


def _words(detail: str, status: int, max_upload_bytes: int) -> str:
    if status == 413:
        return too_large_message(max_upload_bytes)
    if _GRADIO_PATH_REFUSAL.search(detail):
        return not_uploaded_text()
    counts = _NOT_ENOUGH_INPUTS.search(detail)
    if counts:
        return f"This call sent {counts.group(2)} values; this endpoint takes {counts.group(1)}. {READ_THE_API}"
    return web_text(detail)


def _busy_only(detail: list) -> list | None:
    """A validation answer whose refusal is a full lane: that refusal alone, named after the queue."""
    for item in detail:
        if isinstance(item, dict) and str(item.get("message", "")).startswith(BUSY_PREFIX):
            return [{**item, "parameter_name": BUSY_PARAMETER}]
    return None


def _scrubbed(value: Any) -> Any:
    """Every text in a validation answer fit for a visitor (no server path)."""
    if isinstance(value, str):
        return web_text(value)
    if isinstance(value, list):
        return [_scrubbed(item) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item) for key, item in value.items()}
    return value


def rewritten_error(status: int, body: bytes, max_upload_bytes: int) -> tuple[int, bytes, bytes]:
    """(status, body, content type) of an error answer in our words; JSON stays JSON, text stays text."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and "detail" in parsed:
        detail = parsed["detail"]
        if isinstance(detail, str):
            detail = _words(detail, status, max_upload_bytes)
        elif isinstance(detail, list):
            detail = _busy_only(detail) or _scrubbed(detail)
        return status, json.dumps({**parsed, "detail": detail}).encode(), b"application/json"
    if isinstance(parsed, dict) and status == 500 and parsed.get("error") is None and "error" in parsed:
        # An unqueued event that failed without a message of ours: Gradio refused its inputs (too few,
        # a wrong kind), or a handler failed (its traceback is in the server log). Either way, no 500.
        answer = {**parsed, "error": f"This call could not be read. {READ_THE_API}"}
        return 400, json.dumps(answer).encode(), b"application/json"
    if isinstance(parsed, dict):
        return status, json.dumps(_scrubbed(parsed)).encode(), b"application/json"
    text = body.decode("utf-8", "replace")
    return status, _words(text, status, max_upload_bytes).encode(), b"text/plain; charset=utf-8"
