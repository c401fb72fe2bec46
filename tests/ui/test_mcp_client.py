"""MCP (`app.py --mcp`) as a plain MCP client uses it: no progress token, pictures as `data:` URLs.

Gradio 6.31's bridge failed every such ``upscale`` call ("pop index out of range") and wrote the
pictures to ``/tmp/gradio``, outside the app's private folder, for good (``ui.mcp_bridge``).
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
from pathlib import Path

import pytest
from app_process import start_app, stop_app
from PIL import Image


@pytest.fixture(scope="module")
def mcp_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mcp")
    (tmp / "tmp").mkdir()
    process, url, _ = start_app(tmp, "--mcp", env_extra={"TMPDIR": str(tmp / "tmp")})
    yield {"url": url, "tmp": tmp / "tmp"}
    stop_app(process)


def data_url(size: tuple[int, int]) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 40, 90)).save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


async def call_tools(url: str, calls: list[tuple[str, dict]]) -> list:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return [await session.call_tool(name, arguments) for name, arguments in calls]  # no progress token


def test_the_tools_work_from_a_plain_mcp_client_and_keep_their_files_private(mcp_server):
    upscaled, explained, refused = asyncio.run(
        call_tools(
            mcp_server["url"],
            [
                ("upscale", {"image": data_url((24, 20)), "engine": "bicubic"}),
                ("explain", {}),
                ("upscale", {"image": data_url((24, 20)), "engine": "no-such-engine"}),
            ],
        )
    )
    assert not upscaled.isError, upscaled.content
    pictures = [Image.open(io.BytesIO(base64.b64decode(c.data))) for c in upscaled.content if c.type == "image"]
    assert (48, 40) in {picture.size for picture in pictures}  # the result, 2x
    texts = " ".join(c.text for c in upscaled.content if c.type == "text")
    assert "Bicubic" in texts and "pop index" not in texts
    assert not explained.isError and "crisp" in explained.content[0].text
    assert refused.isError and "no-such-engine" in refused.content[0].text

    (private,) = mcp_server["tmp"].glob("cnaps-demo-*")
    sent = [path for path in (private / "mcp").rglob("*") if path.is_file()]
    assert sent, "the picture the MCP client sent is kept in the app's private folder"
    outside = [Path(root) / name for root, _, names in os.walk(mcp_server["tmp"] / "gradio") for name in names]
    assert not outside, outside  # nothing in Gradio's default temp folder
