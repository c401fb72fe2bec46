"""Start `python app.py` on a free loopback port for the end-to-end and browser tests; an offline browser context."""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(tmp_dir: Path, *args: str, env_extra: dict | None = None, timeout: float = 90.0):
    """Start app.py on a free loopback port; return (process, url, seconds to first page)."""
    port = free_port()
    env = dict(os.environ)
    env.update(
        {
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            "CNAPS_CACHE_DIR": str(tmp_dir / "cache"),
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(env_extra or {})
    log = open(tmp_dir / "app.log", "w")  # noqa: SIM115 - the child process writes to it
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "app.py", *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/"
    while True:
        if process.poll() is not None:
            log.close()
            pytest.fail(f"app.py exited with {process.returncode}:\n{(tmp_dir / 'app.log').read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return process, url, time.monotonic() - started
        except OSError:
            pass
        if time.monotonic() - started > timeout:
            process.kill()
            pytest.fail(f"app.py did not serve {url} within {timeout} s:\n{(tmp_dir / 'app.log').read_text()[-4000:]}")
        time.sleep(0.2)


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def offline_context(browser, viewport: dict):
    """A browser context from which nothing leaves the machine: every non-local request gets a stub page."""
    context = browser.new_context(viewport=viewport)
    context.route(
        re.compile(r"^https?://(?!127\.0\.0\.1)"),
        lambda route: route.fulfill(status=200, content_type="text/html", body="<p>offline stub</p>"),
    )
    return context
