"""The house rules, checked: layered imports, small files and functions, settings read in one place.

The import contracts live in pyproject.toml (``[tool.importlinter]``); ``lint-imports`` checks
them. The size limits are the ones the project keeps: a module over 400 lines must say why in
its docstring ("over 400 lines because ..."), a function over 80 lines is not allowed.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cnaps_demo"
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def source_files() -> list[Path]:
    """Everything that runs (tests excluded): the package, the scripts and app.py."""
    return [*modules(), *sorted((ROOT / "benchmarks").glob("*.py")), *sorted((ROOT / "assets").glob("*.py")), ROOT / "app.py"]


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, env={"PYTHONPATH": str(root)}
    )


def test_the_import_contracts_hold():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


def test_an_import_running_back_up_breaks_the_contract(tmp_path):
    """The contract can fail: a copy of the package where the image reader imports the API."""
    shutil.copytree(PACKAGE, tmp_path / "cnaps_demo", ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    arrays = tmp_path / "cnaps_demo" / "image" / "arrays.py"
    arrays.write_text(arrays.read_text() + "\nfrom ..api import plan  # noqa: E402,F401\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "cnaps_demo.image.arrays -> cnaps_demo.api" in done.stdout


def test_the_page_floor_imports_no_gradio_and_no_engine_family(tmp_path):
    """The newer contracts can fail too: ``web`` importing gradio, ``ui`` reaching into an engine family."""
    shutil.copytree(PACKAGE, tmp_path / "cnaps_demo", ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    picker = tmp_path / "cnaps_demo" / "web" / "picker.py"
    picker.write_text(picker.read_text() + "\nimport gradio  # noqa: E402,F401\n")
    messages = tmp_path / "cnaps_demo" / "ui" / "messages.py"
    messages.write_text(messages.read_text() + "\nfrom ..engines.diffusion import hub  # noqa: E402,F401\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "cnaps_demo.web.picker -> gradio" in done.stdout
    assert "cnaps_demo.ui.messages -> cnaps_demo.engines.diffusion" in done.stdout


# The page (``ui``) and its floor (``web``) hold a tighter limit than the rest: their functions lay out
# and wire one section each, and grow with every feature.
PAGE_FUNCTION_LINES = 60
# What only an engine may know about itself: its family, and the ids of its siblings.
ENGINE_KNOWLEDGE = re.compile(
    r"\.family\b|engines\.(cnn|diffusion|classical)\b|\"(realcugan|realesrgan-anime|sd-img2img|sd-latent-x2|lanczos|bicubic|nearest)\""
)


def page_modules() -> list[Path]:
    return sorted([*(PACKAGE / "ui").rglob("*.py"), *(PACKAGE / "web").rglob("*.py")])


def test_the_page_keeps_its_functions_short_and_asks_the_engines():
    too_long, knowing = [], []
    for path in page_modules():
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > PAGE_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
        knowing += [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if ENGINE_KNOWLEDGE.search(line)]
    assert not too_long, too_long
    assert not knowing, knowing  # ask the engine (makes_frames, explorations, is_baseline ...) or the registry
    assert ENGINE_KNOWLEDGE.search('if engine.family == "diffusion":') and ENGINE_KNOWLEDGE.search('x = "lanczos"')


def test_no_module_is_over_400_lines_without_saying_why():
    too_long = []
    for path in source_files():
        lines = path.read_text(encoding="utf-8").count("\n")
        docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
        if lines > MAX_FILE_LINES and "over 400 lines because" not in docstring.lower():
            too_long.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not too_long, too_long


def test_no_function_is_over_80_lines():
    too_long = []
    for path in source_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {length} lines")
    assert not too_long, too_long


def _environment_reads(tree: ast.AST) -> list[int]:
    """Lines that read ``os.environ`` / ``os.getenv`` (writes for a child library are not reads)."""
    stores = {
        id(target.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Subscript)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os":
            if node.attr == "getenv" or (node.attr == "environ" and id(node) not in stores):
                found.append(node.lineno)
    return found


def test_settings_are_read_from_the_environment_in_settings_py_only():
    # bench hands the whole environment to its worker processes: a copy, not a setting.
    allowed = {PACKAGE / "settings.py", PACKAGE / "bench" / "__init__.py"}
    readers = []
    for path in modules():
        if path in allowed:
            continue
        for line in _environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            readers.append(f"{path.relative_to(ROOT)}:{line}")
    assert not readers, readers
    assert _environment_reads(ast.parse("import os\nx = os.environ.get('A')\n")) == [2]  # the check can fail
    assert _environment_reads(ast.parse("import os\nos.environ['A'] = '1'\n")) == []
