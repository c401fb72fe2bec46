"""Theme, CSS and the small head script of the web UI."""

from __future__ import annotations

import gradio as gr

BUSY_MESSAGE = "The demo is busy right now: the queue is full. Please try again in a minute."
# Gradio's front end shows this fixed text when the queue refuses a job (HTTP 503).
GRADIO_BUSY_TEXT = "This application is currently busy"

BASE_CSS = """
.cnaps-header h1 { font-size: 2.3rem; margin: 0.2rem 0 0.1rem; line-height: 1.15; }
.cnaps-header p { font-size: 1.15rem; margin: 0.2rem 0 0.4rem; opacity: 0.9; }
.cnaps-status { font-size: 1rem; }
.cnaps-status p { margin: 0.2rem 0; }
.cnaps-ba { display: flex; justify-content: space-between; gap: 1rem; font-weight: 700;
            font-size: 1.1rem; margin: 0 0 0.3rem; }
.cnaps-ba span { padding: 0.15rem 0.7rem; border-radius: 1rem; max-width: 49%;
                 border: 2px solid var(--border-color-primary); }
.cnaps-ba .cnaps-after { text-align: right; }
.cnaps-ba .cnaps-after { border-color: var(--color-accent); }
.cnaps-diagram-wrap { width: 100%; overflow-x: auto; padding: 0.4rem 0; color: var(--body-text-color); }
.cnaps-diagram-wrap svg { display: block; margin: 0 auto 1rem; }
.cnaps-diagram-wrap .cnaps-empty, .cnaps-empty { opacity: 0.7; font-size: 1.05rem; padding: 1rem 0; }
#cnaps-crops img, #cnaps-compare-crops img, .cnaps-pixelated img { image-rendering: pixelated; }
.cnaps-explain, .cnaps-credits { font-size: 1.08rem; line-height: 1.6; max-width: 64rem;
                                 color: var(--body-text-color); }
.cnaps-explain h2, .cnaps-credits h2 { font-size: 1.5rem; margin: 1.4rem 0 0.5rem; }
.cnaps-explain h3 { font-size: 1.2rem; margin: 1.1rem 0 0.3rem; }
.cnaps-explain a, .cnaps-credits a { color: var(--link-text-color); text-decoration: underline; }
.cnaps-explain cite { font-style: normal; font-weight: 700; }
.cnaps-muted { opacity: 0.75; }
.cnaps-flow { display: flex; flex-wrap: wrap; gap: 0.35rem 0; list-style: none; padding: 0; margin: 0.4rem 0; }
.cnaps-flow li { display: flex; align-items: center; }
.cnaps-flow li span { border: 2px solid var(--color-accent); border-radius: 10px; padding: 0.2rem 0.55rem;
                      background: var(--color-accent-soft); }
.cnaps-flow li:not(:last-child)::after { content: "\\2192"; font-weight: 700; margin: 0 0.4rem; }
.cnaps-sources li, .cnaps-engines > li { margin-bottom: 0.7rem; }
"""

PRESENTER_CSS = """
.gradio-container { font-size: 1.3rem; }
.cnaps-header h1 { font-size: 3rem; }
.cnaps-header p { font-size: 1.5rem; }
.cnaps-ba { font-size: 1.5rem; }
.cnaps-status { font-size: 1.3rem; }
.cnaps-explain, .cnaps-credits { font-size: 1.35rem; max-width: 80rem; }
.cnaps-explain h2, .cnaps-credits h2 { font-size: 1.9rem; }
"""

# Rewrites Gradio's fixed "queue is full" toast into a message that says what to do.
HEAD_SCRIPT = (
    "<script>(() => {"
    f"const OLD = {GRADIO_BUSY_TEXT!r}; const NEW = {BUSY_MESSAGE!r};"
    "const fix = (node) => {"
    " if (!node) return;"
    " if (node.nodeType === 3) { if (node.nodeValue.includes(OLD)) node.nodeValue = NEW; return; }"
    " if (node.nodeType !== 1 || !(node.textContent || '').includes(OLD)) return;"
    " const walker = document.createTreeWalker(node, NodeFilter.SHOW_TEXT);"
    " for (let t = walker.nextNode(); t; t = walker.nextNode()) { if (t.nodeValue.includes(OLD)) t.nodeValue = NEW; }"
    "};"
    "const start = () => new MutationObserver((records) => {"
    " for (const r of records) { if (r.type === 'characterData') fix(r.target); r.addedNodes.forEach(fix); }"
    "}).observe(document.body, {childList: true, subtree: true, characterData: true});"
    "if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);"
    "})();</script>"
)


def make_theme(presenter: bool = False) -> gr.themes.Theme:
    return gr.themes.Soft(
        primary_hue="violet",
        secondary_hue="pink",
        text_size=gr.themes.sizes.text_lg if presenter else gr.themes.sizes.text_md,
    )


def make_css(presenter: bool = False) -> str:
    return BASE_CSS + (PRESENTER_CSS if presenter else "")
