"""The check logic imports nothing from Django: only DNS reaches outside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path",
    [
        "compliance/check_results.py",
        "compliance/domains/checks.py",
        "compliance/domains/resolver.py",
    ],
)
def test_the_module_imports_nothing_from_django(path):
    imported = []
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
    assert imported
    assert [name for name in imported if name.split(".")[0] == "django"] == []
