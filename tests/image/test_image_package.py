"""The face of cnaps_demo.image: what it exports, and what it must not depend on."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import cnaps_demo.image as image

PACKAGE = Path(image.__file__).parent


def test_every_exported_name_exists():
    assert sorted(image.__all__) == sorted(set(image.__all__))
    missing = [name for name in image.__all__ if not hasattr(image, name)]
    assert missing == []


def test_no_module_reads_settings():
    # The caller passes limits in; the image contract reads no environment.
    offenders = []
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [alias.name for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name == "settings" or name.endswith(".settings") for name in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_importing_the_package_loads_neither_torch_nor_gradio():
    code = (
        "import sys, cnaps_demo.image; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'gradio'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
