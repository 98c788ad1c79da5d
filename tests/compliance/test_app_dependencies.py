"""Dependencies between the apps point one way (DESIGN.md, Layout): `unsubscribe` and `fbl` use
`suppression`, which uses `compliance`; `unsubscribe` plugs into `fbl` (fbl/plugins.py). The
consent ledger (`compliance.consent`) sits between the list and the apps that record consent:
it reads and writes the list, and hears of opt-outs through `suppression.signals`. Downstream
webhooks (`compliance.webhooks`) sit above it and hear of changes the same way. Data-subject
requests (`compliance.dsr`) and the dashboard (`compliance.dashboard`) sit on top of
everything. Domain health (`compliance.domains`) reads DNS with fbl's resolver and nothing else
of the apps. The pre-send message check
(`compliance.preflight`) sits above `fbl`, whose DKIM verification and raw-message parser it
uses; nothing imports it. Read from the source, so a lazy import inside a function counts as
much as one at the top."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = (
    "compliance",
    "compliance.consent",
    "compliance.webhooks",
    "compliance.dsr",
    "compliance.domains",
    "compliance.preflight",
    "compliance.dashboard",
    "suppression",
    "unsubscribe",
    "fbl",
)

# What each app may import (besides itself). compliance/urls.py, the project's URL
# configuration, names the apps' URL modules as strings and imports none of them.
ALLOWED = {
    "compliance": set(),
    "suppression": {"compliance"},
    "compliance.consent": {"compliance", "suppression"},
    # Downstream webhooks hear of opt-outs, suppressions and withdrawals through signals.
    "compliance.webhooks": {"compliance", "suppression", "compliance.consent"},
    "fbl": {"compliance", "suppression", "compliance.consent"},
    "unsubscribe": {"compliance", "suppression", "fbl", "compliance.consent"},
    # Its DNS lookups go through fbl.dkim's nameserver parsing (one place for "IP:PORT").
    "compliance.domains": {"compliance", "fbl"},
    # Data-subject requests reach every app's data; nothing imports them.
    "compliance.dsr": {
        "compliance",
        "compliance.consent",
        "compliance.webhooks",
        "suppression",
        "fbl",
        "unsubscribe",
    },
    # The pre-send check verifies DKIM as fbl does and takes raw messages as fbl's API does.
    "compliance.preflight": {"compliance", "fbl"},
    # The dashboard reads every app's figures (and the domain checks, once installed); nothing
    # imports it.
    "compliance.dashboard": {
        "compliance",
        "compliance.consent",
        "compliance.webhooks",
        "compliance.dsr",
        "compliance.domains",
        "suppression",
        "fbl",
        "unsubscribe",
    },
}


def app_of(module: str) -> str | None:
    """The unit a module belongs to: the longest name in APPS that is it or contains it."""
    found = [a for a in APPS if module == a or module.startswith(a + ".")]
    return max(found, key=len, default=None)


def files_of(app: str):
    """The app's own files (a unit nested in it keeps its own)."""
    for path in (ROOT / app.replace(".", "/")).rglob("*.py"):
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if app_of(module) == app:
            yield path


def imports_of(app: str) -> dict[str, set[str]]:
    """{other app: the files of `app` that import it}."""
    found: dict[str, set[str]] = {}
    for path in files_of(app):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                other = app_of(name)
                if other is not None and other != app:
                    found.setdefault(other, set()).add(str(path.relative_to(ROOT)))
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
