"""A browser page's requests without a browser: Gradio's raw HTTP routes, stdlib only.

Used by ``load_test.py`` and the crowd tests to do what gradio_client cannot (call the page's own
private events: a page run, the crop picker, Compare; send uploads and bodies of any shape), and
to measure the server from outside (its RSS, CPU seconds, and the size of its private folder).
Loopback only: every URL must be on 127.0.0.1.
"""

from __future__ import annotations

import http.client as httplib
import json
import os
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

LOOPBACK = "http://127.0.0.1:"


def http(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
    """(status, body) of one request; an HTTP error is an answer too, and so is one the server sends
    before it has read the whole body (a refused large upload): the rest of the body is not sent."""
    if not url.startswith(LOOPBACK):
        raise ValueError(f"only loopback servers are exercised: {url}")
    parts = urllib.parse.urlsplit(url)
    connection = httplib.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.putrequest("POST" if data is not None else "GET", target)
        sized = {"Content-Length": str(len(data))} if data is not None else {}
        for name, value in {**(headers or {}), **sized}.items():
            connection.putheader(name, value)
        connection.endheaders()
        try:
            for start in range(0, len(data or b""), 1 << 20):
                connection.send(data[start : start + (1 << 20)])
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered early and closed: its answer is still there to read
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_json(url: str, payload: Any, headers: dict | None = None, timeout: float = 60) -> tuple[int, bytes]:
    return http(url, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}, timeout)


def multipart(files: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart body of ``files`` (name, content) under the field Gradio's /upload reads, and its type."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
        for name, content in files
    ]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


class RawSession:
    """One browser session's worth of calls (its own session hash) against the app at ``url``."""

    def __init__(self, url: str, headers: dict | None = None, config: dict | None = None) -> None:
        self.url = url if url.endswith("/") else url + "/"
        self.headers = dict(headers or {})
        self.session = uuid.uuid4().hex[:12]
        self._config = config

    @property
    def config(self) -> dict:
        if self._config is None:
            status, body = http(self.url + "config", headers=self.headers)
            assert status == 200, status
            self._config = json.loads(body)
        return self._config

    def dependency(self, name: str) -> tuple[int, dict]:
        """(fn index, dependency) of the event whose function (or API) name is ``name``."""
        for index, dep in enumerate(self.config["dependencies"]):
            if dep.get("api_name") == name:
                return dep.get("id", index), dep
        raise KeyError(name)

    def inputs_for(self, name: str, values: dict[int, Any]) -> list[Any]:
        """The event's inputs in order: ``values`` by component id, else each component's page value."""
        _, dep = self.dependency(name)
        props = {c["id"]: c.get("props", {}) for c in self.config["components"]}
        return [values[i] if i in values else props.get(i, {}).get("value") for i in dep["inputs"]]

    def component_id(self, elem_id: str) -> int:
        return next(c["id"] for c in self.config["components"] if c.get("props", {}).get("elem_id") == elem_id)

    def upload(self, files: list[tuple[str, bytes]]) -> tuple[int, Any]:
        body, content_type = multipart(files)
        status, reply = http(self.url + "gradio_api/upload", body, {"Content-Type": content_type, **self.headers})
        try:
            return status, json.loads(reply)
        except ValueError:
            return status, reply.decode("utf-8", "replace")

    def predict(self, name: str, data: list, event_data: Any = None) -> tuple[int, Any]:
        """An unqueued event (the crop picker, Stop): its JSON answer."""
        fn_index, _ = self.dependency(name)
        body = {"fn_index": fn_index, "data": data, "session_hash": self.session, "event_data": event_data}
        status, reply = post_json(self.url + "gradio_api/run/predict", body, self.headers)
        return status, json.loads(reply) if reply.startswith(b"{") else reply.decode("utf-8", "replace")

    def run(self, name: str, data: list, timeout: float = 300) -> tuple[str, Any]:
        """A queued event: ("complete", outputs), ("error", message) or ("refused", answer)."""
        fn_index, _ = self.dependency(name)
        body = {"fn_index": fn_index, "data": data, "session_hash": self.session, "event_data": None}
        status, reply = post_json(self.url + "gradio_api/queue/join", body, self.headers)
        if status != 200:
            return "refused", reply.decode("utf-8", "replace")
        event_id = json.loads(reply)["event_id"]
        stream = f"{self.url}gradio_api/queue/data?session_hash={self.session}"
        request = urllib.request.Request(stream, headers=self.headers)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                    output = message.get("output") or {}
                    if message.get("success"):
                        return "complete", output.get("data")
                    return "error", output.get("error")
        return "closed", None


def rss_mb(pid: int) -> float:
    """The process's resident memory, MB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used, s."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def folder_mb(folder: Path) -> float:
    """Bytes of every file under ``folder``, MB."""
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total / (1024 * 1024)
