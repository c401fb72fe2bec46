"""A loopback stand-in for the Hugging Face Hub: serves local folders in the Hub's HTTP layout.

Enough of the Hub API for huggingface_hub's own client (``HfApi.list_repo_files``,
``snapshot_download``, ``hf_hub_download``) to fetch from it with ``endpoint=server.url``:

* ``GET /api/models/{repo}/revision/{rev}`` — the commit a revision points at, and the files;
* ``GET /api/models/{repo}/tree/{rev}`` — the file listing (sizes, blob ids);
* ``HEAD``/``GET /{repo}/resolve/{rev}/{path}`` — a file, with the commit and ETag headers.

Every repository has one commit (``COMMIT``, or the one given). Requests are logged in
``server.requests`` so a test can see what was fetched. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

COMMIT = "c0ffee0000000000000000000000000000000001"


class HubServer:
    def __init__(self, repos: dict[str, Path], commits: dict[str, str] | None = None) -> None:
        self.repos = {name: Path(folder) for name, folder in repos.items()}
        self.commits = dict(commits or {})
        self.requests: list[tuple[str, str]] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def commit(self, repo: str) -> str:
        return self.commits.get(repo, COMMIT)

    def files(self, repo: str) -> list[str]:
        root = self.repos[repo]
        return sorted(str(p.relative_to(root)).replace("\\", "/") for p in root.rglob("*") if p.is_file())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet test output
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def _json(self, payload: object, body: bool) -> None:
                self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"}, body)

            def _missing(self, body: bool, code: str = "RepoNotFound") -> None:
                headers = {"X-Error-Code": code, "X-Error-Message": "not here", "Content-Type": "application/json"}
                self._send(404, b'{"error": "not here"}', headers, body)

            def _serve(self, body: bool) -> None:
                path = unquote(urlparse(self.path).path)
                server.requests.append((self.command, path))
                parts = path.strip("/").split("/")
                if parts[:2] == ["api", "models"] and len(parts) >= 6:
                    repo, kind, revision = "/".join(parts[2:4]), parts[4], parts[5]
                    if repo not in server.repos:
                        return self._missing(body)
                    if revision not in ("main", server.commit(repo)):
                        return self._missing(body, "RevisionNotFound")
                    files = server.files(repo)
                    if kind == "revision":
                        siblings = [{"rfilename": name} for name in files]
                        return self._json({"id": repo, "sha": server.commit(repo), "siblings": siblings}, body)
                    if kind == "tree":
                        entries = []
                        for name in files:
                            data = (server.repos[repo] / name).read_bytes()
                            entries.append(
                                {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
                            )
                        return self._json(entries, body)
                    return self._missing(body)
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, revision, name = "/".join(parts[:2]), parts[3], "/".join(parts[4:])
                    if repo not in server.repos:
                        return self._missing(body)
                    if revision not in ("main", server.commit(repo)):
                        return self._missing(body, "RevisionNotFound")
                    target = server.repos[repo] / name
                    if not target.is_file():
                        return self._missing(body, "EntryNotFound")
                    data = target.read_bytes()
                    headers = {
                        "X-Repo-Commit": server.commit(repo),
                        "ETag": f'"{hashlib.sha1(data).hexdigest()}"',
                        "Content-Type": "application/octet-stream",
                    }
                    return self._send(200, data, headers, body)
                self._missing(body)

        return Handler
