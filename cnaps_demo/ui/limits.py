"""Every byte that arrives is counted, before anything decodes it.

``RequestLimits`` is an ASGI middleware on the app Gradio builds (``page.launch_kwargs`` hands it
to ``launch(app_kwargs=...)``). For every request with a body it

* refuses a client over its quota (``ByteQuota``: bytes per time window, uploads, pasted pictures
  and every other body together) with 429, and counts what arrives against it;
* caps the body: an upload at ``max_files`` files of the upload limit, any other body (JSON with a
  ``data:`` URL inside, an MCP call) at that limit written as base64; a body that says or turns out
  to be larger gets 413 with the same words as a too-large upload, and the rest is never read;
* caps the files in one upload (the page sends one picture per request).

Its answers, and Gradio's own error answers that pass through it, read as ours (``public_errors``).
A client is its socket address; behind a proxy on a private or loopback address (a Hugging Face
Space), the address the proxy appends to ``X-Forwarded-For``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..settings import Settings
from ..web.words import size_text, too_large_message
from .public_errors import answer_of, rewritten_error

log = logging.getLogger(__name__)

MB = 1024 * 1024
MULTIPART_SLACK = 16 * 1024  # part headers and boundaries around the files
JSON_SLACK = 256 * 1024  # the other fields of a JSON call beside one picture
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# A refused body is still read (and dropped) up to this many times its cap, so that the client reads
# the answer; anything larger gets the connection closed on it.
DRAIN_CAPS = 2
# The gradio_client that Gradio's MCP bridge runs inside this process (it re-uploads an MCP client's
# picture over loopback; the MCP call itself was already counted against that client).
MCP_BRIDGE_HEADER = (b"x-gradio-user", b"mcp")


def too_many_files_message(max_files: int) -> str:
    noun = "file" if max_files == 1 else "files"
    return f"One upload may carry at most {max_files} {noun}. Send each picture in a request of its own."


def over_quota_message(quota_bytes: int, window_s: float) -> str:
    minutes = f"{window_s / 60:.0f} minutes" if window_s >= 120 else f"{window_s:.0f} seconds"
    return (
        f"This connection sent more than {size_text(quota_bytes)} in {minutes}, "
        "the most this server takes from one visitor. Wait a few minutes and try again."
    )


@dataclass(frozen=True)
class Limits:
    """The sizes ``RequestLimits`` enforces, from ``Settings``."""

    max_upload_bytes: int
    max_files: int
    quota_bytes: int
    window_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_upload_bytes=settings.max_upload_mb * MB,
            max_files=settings.max_upload_files,
            quota_bytes=settings.upload_quota_mb * MB,
            window_s=float(settings.upload_window_s),
        )

    @property
    def inline_cap(self) -> int:
        """A JSON body: one picture of the upload limit as base64 (4 bytes per 3), and the other fields."""
        return 4 * -(-self.max_upload_bytes // 3) + JSON_SLACK

    def body_cap(self, path: str) -> int:
        if is_upload_route(path):
            return self.max_files * self.max_upload_bytes + MULTIPART_SLACK
        return self.inline_cap


def is_upload_route(path: str) -> bool:
    return path.rstrip("/").endswith("/upload")


class ByteQuota:
    """Bytes per client over a sliding window. Thread-safe; remembers at most ``max_clients``."""

    def __init__(
        self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic, max_clients: int = 10_000
    ) -> None:
        self.limit = limit
        self.window_s = window_s
        self._clock = clock
        self._max_clients = max_clients
        self._lock = threading.Lock()
        self._sent: OrderedDict[str, tuple[deque[list[float]], list[int]]] = OrderedDict()

    def _entry(self, client: str) -> tuple[deque[list[float]], list[int]]:
        """(time-stamped amounts, [their sum]) of ``client`` with the old ones dropped (lock held)."""
        entry = self._sent.get(client)
        if entry is None:  # a new client: the least recently seen is forgotten beyond max_clients
            entry = self._sent[client] = (deque(), [0])
            while len(self._sent) > self._max_clients:
                self._sent.popitem(last=False)
        self._sent.move_to_end(client)
        amounts, total = entry
        cutoff = self._clock() - self.window_s
        while amounts and amounts[0][0] < cutoff:
            total[0] -= int(amounts.popleft()[1])
        return entry

    def used(self, client: str) -> int:
        with self._lock:
            return self._entry(client)[1][0] if client in self._sent else 0

    def charge(self, client: str, count: int) -> bool:
        """Count ``count`` bytes from ``client``; False once its window holds more than the limit."""
        with self._lock:
            amounts, total = self._entry(client)
            now = self._clock()
            if amounts and now - amounts[-1][0] < 1.0:
                amounts[-1][1] += count  # one entry per second at most: a large body is many chunks
            else:
                amounts.append([now, float(count)])
            total[0] += count
            return total[0] <= self.limit


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _is_proxy(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


def client_key(scope: dict) -> str:
    """Who sent this request: the socket's address, or behind a private proxy the address it appends."""
    peer = (scope.get("client") or ("",))[0] or "unknown"
    forwarded = _header(scope, b"x-forwarded-for")
    if forwarded and _is_proxy(peer):
        return forwarded.split(",")[-1].strip() or peer
    return peer


def is_mcp_bridge(scope: dict) -> bool:
    peer = (scope.get("client") or ("",))[0]
    name, value = MCP_BRIDGE_HEADER
    return peer in ("127.0.0.1", "::1") and _header(scope, name) == value.decode() and not _header(
        scope, b"x-forwarded-for"
    )


class BodyMeter:
    """Counts one body as it arrives: its size against ``cap``, its multipart files against ``max_files``."""

    def __init__(self, cap: int, max_files: int | None, boundary: bytes | None) -> None:
        self.cap = cap
        self.size = 0
        self.max_files = max_files
        self._delimiter = b"--" + boundary if boundary else None
        self._delimiters = 0
        self._tail = b""

    def feed(self, chunk: bytes) -> str | None:
        """``"size"`` or ``"files"`` once the body breaks a limit, else None."""
        self.size += len(chunk)
        if self.size > self.cap:
            return "size"
        if self._delimiter is None or self.max_files is None:
            return None
        window = self._tail + chunk  # a delimiter split across two chunks ends in this one
        self._delimiters += window.count(self._delimiter)
        self._tail = window[-(len(self._delimiter) - 1) :]
        # n files need n + 1 delimiters (the last closes the body)
        return "files" if self._delimiters > self.max_files + 1 else None


def multipart_boundary(scope: dict) -> bytes | None:
    content_type = _header(scope, b"content-type") or ""
    if not content_type.lower().startswith("multipart/"):
        return None
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode("latin-1")
    return None


async def respond(
    send: Callable, status: int, message: str, headers: dict[str, str] | None = None, *, plain: bool = False
) -> None:
    """A JSON ``{"detail": message}`` answer, the shape FastAPI gives its errors; ``plain``: the text alone,
    the shape of Gradio's own upload errors."""
    body = message.encode() if plain else json.dumps({"detail": message}).encode()
    kind = b"text/plain; charset=utf-8" if plain else b"application/json"
    head = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
    head += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class RequestLimits:
    """The ASGI middleware: quota, body and file caps, and our words on every error answer."""

    def __init__(self, app: Any, limits: Limits, quota: ByteQuota | None = None) -> None:
        self.app = app
        self.limits = limits
        self.quota = quota or ByteQuota(limits.quota_bytes, limits.window_s)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        plain = is_upload_route(scope.get("path", ""))
        state = {"started": False, "answered": False}
        app_send = self._rewriting(send, state)  # the app's answers; ours below go out as they are
        if scope.get("method") in BODY_METHODS:
            refusal = self._refusal_before_reading(scope)
            if refusal is not None:
                await self._drain(scope, receive)
                await respond(send, *refusal, plain=plain)
                return
            receive = self._metered(scope, receive, send, state)
        try:
            await self.app(scope, receive, app_send)
        except Exception as error:  # noqa: BLE001 - only a malformed call's errors are answered here
            if state["answered"]:
                return  # we refused the body; the app then failed to read it
            answer = None if state["started"] else answer_of(error, scope)
            if answer is None:
                raise
            log.warning("refused a malformed call to %s: %s", scope.get("path"), type(error).__name__)
            await respond(send, *answer, plain=plain)

    def _refusal_before_reading(self, scope: dict) -> tuple[int, str, dict[str, str]] | None:
        client = client_key(scope)
        if not is_mcp_bridge(scope) and self.quota.used(client) > self.quota.limit:
            return 429, over_quota_message(self.quota.limit, self.quota.window_s), {"Retry-After": "60"}
        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.body_cap(scope.get("path", "")):
            return 413, too_large_message(self.limits.max_upload_bytes), {}
        return None

    async def _drain(self, scope: dict, receive: Callable) -> None:
        """Read a refused body on, up to ``DRAIN_CAPS`` times its cap, and throw it away: a client that
        sends its whole body before it reads (most do) then gets our answer, not a broken pipe. The
        bytes count against its quota; past the bound the connection just closes."""
        bound, drained = DRAIN_CAPS * self.limits.body_cap(scope.get("path", "")), 0
        client, counted = client_key(scope), not is_mcp_bridge(scope)
        while drained <= bound:
            message = await receive()
            chunk = message.get("body", b"") if message.get("type") == "http.request" else b""
            drained += len(chunk)
            if counted:
                self.quota.charge(client, len(chunk))
            if message.get("type") != "http.request" or not message.get("more_body"):
                return

    def _metered(self, scope: dict, receive: Callable, send: Callable, state: dict) -> Callable:
        path = scope.get("path", "")
        upload = is_upload_route(path)
        meter = BodyMeter(self.limits.body_cap(path), self.limits.max_files if upload else None,
                          multipart_boundary(scope) if upload else None)
        client, counted = client_key(scope), not is_mcp_bridge(scope)

        async def metered_receive() -> dict:
            if state["answered"]:
                return {"type": "http.disconnect"}
            message = await receive()
            if message.get("type") != "http.request":
                return message
            chunk = message.get("body", b"")
            within_quota = self.quota.charge(client, len(chunk)) if counted else True
            broken = meter.feed(chunk)
            if broken or not within_quota:
                if message.get("more_body"):
                    await self._drain(scope, receive)
                await self._refuse_midway(send, state, broken, plain=upload)
                return {"type": "http.disconnect"}
            return message

        return metered_receive

    async def _refuse_midway(self, send: Callable, state: dict, broken: str | None, *, plain: bool) -> None:
        if state["started"]:
            return
        if broken == "size":
            answer = (413, too_large_message(self.limits.max_upload_bytes), {})
        elif broken == "files":
            answer = (413, too_many_files_message(self.limits.max_files), {})
        else:
            answer = (429, over_quota_message(self.quota.limit, self.quota.window_s), {"Retry-After": "60"})
        await respond(send, *answer, plain=plain)
        state["answered"] = True  # after our answer, whatever the app sends is dropped

    def _rewriting(self, send: Callable, state: dict) -> Callable:
        """``send`` that passes successes through and collects an error answer to say it in our words."""
        held: dict[str, Any] = {}

        async def rewriting_send(message: dict) -> None:
            if state["answered"]:
                return
            if message["type"] == "http.response.start":
                state["started"] = True
                if message.get("status", 200) >= 400:
                    held["start"], held["body"] = message, b""
                    return
            elif message["type"] == "http.response.body" and "start" in held:
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                status, body, content_type = rewritten_error(
                    held["start"]["status"], held["body"], self.limits.max_upload_bytes
                )
                start = dict(held.pop("start"))
                start["status"] = status
                replaced = (b"content-length", b"content-type", b"content-encoding")
                kept = [(k, v) for k, v in start.get("headers", []) if k.lower() not in replaced]
                length = str(len(body)).encode()
                start["headers"] = [*kept, (b"content-type", content_type), (b"content-length", length)]
                await send(start)
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        return rewriting_send
