"""Dependencies between the apps point one way (DESIGN.md, Layout): `unsubscribe` and `fbl` use
`suppression`, which uses `compliance`; `unsubscribe` plugs into `fbl` (fbl/plugins.py). Read
from the source, so a lazy import inside a function counts as much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("compliance", "suppression", "unsubscribe", "fbl")

# What each app may import (besides itself). compliance/urls.py, the project's URL
# configuration, names the apps' URL modules as strings and imports none of them.
ALLOWED = {
    "compliance": set(),
    "suppression": {"compliance"},
    "fbl": {"compliance", "suppression"},
    "unsubscribe": {"compliance", "suppression", "fbl"},
}


def imports_of(app: str) -> dict[str, set[str]]:
    """{other app: the files of `app` that import it}."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / app).rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top in APPS and top != app:
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("app", APPS)
def test_an_app_imports_only_the_apps_below_it(app):
    wrong = {
        other: sorted(files)
        for other, files in imports_of(app).items()
        if other not in ALLOWED[app]
    }
    assert wrong == {}, f"{app} imports apps it may not: {wrong}"


def test_there_is_no_import_cycle_between_the_apps():
    graph = {app: set(imports_of(app)) for app in APPS}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = [app for app in APPS if reaches(app, app, {app})]
    assert cycles == []
