"""Theme, CSS and the small head script of the web UI."""

from __future__ import annotations

import gradio as gr

from ..present import diagram

BUSY_MESSAGE = "The demo is busy right now: the queue is full. Please try again in a minute."
# Gradio's front end shows this fixed text when the queue refuses a job (HTTP 503).
GRADIO_BUSY_TEXT = "This application is currently busy"

BASE_CSS = """
/* One short header, so that the picture, the button and the slider sit above a 720 px fold. */
.cnaps-header h1 { font-size: 1.6rem; margin: 0 0 0.1rem; line-height: 1.2; }
.cnaps-header p { font-size: 1rem; margin: 0 0 0.2rem; opacity: 0.85; }
.gradio-container { padding-top: 0.4rem !important; }
.cnaps-card { font-size: 0.95rem; line-height: 1.4; padding: 0.45rem 0.7rem; border-radius: 10px;
              border: 1px solid var(--border-color-primary); background: var(--block-background-fill); }
.cnaps-card-off { border: 2px dashed var(--color-accent); }
#cnaps-buttons { gap: 0.5rem; }
/* Where the browser shares the server's cores, every frame it draws is CPU taken from the job.
   Gradio's run timer ticks 10 times a second (our progress text says the elapsed time and the time
   left already); its progress bar eases each update over 150 ms, a layout per frame; a toast's
   countdown bar animates for 10 s, a style pass per frame even as a transform in a browser without
   a GPU. Without the three, Chromium on the same 2 cores spent half the CPU during a 600x600 job
   (2.5 s -> 1.3 s): the bar now steps 4 times a second, and a toast stays its time without a bar. */
#cnaps-slider .progress-text { display: none; }
#cnaps-slider .progress-bar { transition: none !important; }
.toast-body .timer { display: none !important; }
.cnaps-status { font-size: 1rem; }
.cnaps-status p { margin: 0.2rem 0; }
/* Two pills on one line where they fit; else the second goes under the first, whole (the arrows say
   which side is which). */
.cnaps-ba { display: flex; flex-wrap: wrap; justify-content: space-between; gap: 0.3rem 0.5rem; font-weight: 700;
            font-size: 1rem; margin: 0 0 0.2rem; }
.cnaps-ba span { padding: 0.1rem 0.6rem; border-radius: 1rem; max-width: 100%; white-space: nowrap;
                 overflow: hidden; text-overflow: ellipsis; border: 2px solid var(--border-color-primary); }
.cnaps-ba .cnaps-after { margin-left: auto; }
.cnaps-ba small { font-weight: 400; opacity: 0.85; }
.cnaps-ba .cnaps-after { text-align: right; }
.cnaps-ba .cnaps-after { border-color: var(--color-accent); }
.cnaps-ba.cnaps-card-off, .cnaps-no-result { font-weight: 400; }
/* A phone: each label on its own line, whole (never cut: it says whose result this is). */
@media (max-width: 640px) {
  .cnaps-ba span { white-space: normal; overflow: visible; }
}
/* The engine picker's text never runs under its arrow (the labels are short; this is the backstop). */
#cnaps-engine input { text-overflow: ellipsis; }
/* The Compare table scrolls sideways on a narrow screen instead of breaking its headers letter by letter. */
#cnaps-compare-table table { display: block; max-width: 100%; overflow-x: auto; }
#cnaps-compare-table th, #cnaps-compare-table td { word-break: normal; overflow-wrap: normal; hyphens: none; }
#cnaps-compare-table th { min-width: 5.5rem; }
.cnaps-diagram-wrap { width: 100%; overflow-x: auto; padding: 0.4rem 0; color: var(--body-text-color); }
.cnaps-diagram-wrap svg { display: block; margin: 0 auto 1rem; }
.cnaps-diagram-wrap .cnaps-empty, .cnaps-empty { opacity: 0.7; font-size: 1.05rem; padding: 1rem 0; }
.cnaps-crops { display: flex; flex-wrap: wrap; gap: 0.6rem; }
.cnaps-crop { margin: 0; max-width: 100%; }
/* Width and height are set to the crop x zoom: never let the page rescale them (uneven pixels). */
.cnaps-crop img { image-rendering: pixelated; display: block; max-width: none; }
.cnaps-crop figcaption { font-size: 0.9rem; line-height: 1.25; padding-top: 0.2rem; overflow-wrap: anywhere; }
.cnaps-crop-note { font-size: 0.85rem; margin: 0.3rem 0 0; }
.cnaps-pixelated img { image-rendering: pixelated; }
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
.gradio-container { font-size: 1.2rem; }
.cnaps-header h1 { font-size: 2rem; }
.cnaps-header p { display: none; }
.cnaps-ba { font-size: 1.25rem; }
.cnaps-card { font-size: 1.1rem; }
.cnaps-status { font-size: 1.2rem; }
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
) + (
    # The small picture of where the crops are is clicked to move them: Gradio loads its images
    # lazily, so a click could land before it was there. Load it at once, clickable once loaded.
    "<script>(() => {"
    "const EAGER = '#cnaps-where img, #cnaps-added img';"
    "const ready = (img) => { img.style.pointerEvents = ''; };"
    "const eager = () => document.querySelectorAll(EAGER).forEach((img) => {"
    " if (img.loading !== 'eager') img.loading = 'eager';"
    " if (!img.complete) { img.style.pointerEvents = 'none';"
    "  img.addEventListener('load', () => ready(img), {once: true});"
    "  img.addEventListener('error', () => ready(img), {once: true}); }"
    "});"
    "const start = () => new MutationObserver(eager).observe(document.body, {childList: true, subtree: true,"
    " attributes: true, attributeFilter: ['src']});"
    "if (document.body) start(); else document.addEventListener('DOMContentLoaded', start);"
    "})();</script>"
)


# The system's own fonts: ordinary letterforms on every device, and no font file to fetch. (The
# Soft theme's Montserrat drew "E" and "w" as alternates in Chromium: "hoω", "ωhat" read as typos.)
SYSTEM_FONTS = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "Noto Sans",
                "Liberation Sans", "DejaVu Sans", "sans-serif")
SYSTEM_MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "Liberation Mono", "DejaVu Sans Mono",
               "monospace")


def make_theme(presenter: bool = False) -> gr.themes.Theme:
    return gr.themes.Soft(
        primary_hue="violet",
        secondary_hue="pink",
        text_size=gr.themes.sizes.text_lg if presenter else gr.themes.sizes.text_md,
        font=SYSTEM_FONTS,
        font_mono=SYSTEM_MONO,
    )


# Which diagram layout shows. Gradio's CSS loader drops @container rules (diagram.RESPONSIVE_CSS),
# so the page switches on the window width; the diagram spans the page, so the two agree.
DIAGRAM_CSS = f"""
.cnaps-diagram-pair > .cnaps-diagram-tall {{ display: none; }}
@media (max-width: {diagram.STACK_BELOW_PX}px) {{
  .cnaps-diagram-pair > .cnaps-diagram-wide {{ display: none; }}
  .cnaps-diagram-pair > .cnaps-diagram-tall {{ display: block; }}
}}
"""


# The explainer sections under the result: plots side by side on a laptop, stacked on a phone.
EXPLAINER_CSS = """
.cnaps-plots { display: flex; flex-wrap: wrap; gap: 12px; }
.cnaps-plot { flex: 1 1 320px; max-width: 560px; margin: 0; }
.cnaps-plot svg { width: 100%; height: auto; }
.cnaps-plot figcaption { font-size: 0.9em; }
"""


def make_css(presenter: bool = False) -> str:
    return BASE_CSS + DIAGRAM_CSS + EXPLAINER_CSS + (PRESENTER_CSS if presenter else "")
