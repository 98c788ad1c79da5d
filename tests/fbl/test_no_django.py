"""The parsing modules are pure: importing them loads no Django (DESIGN.md, layout)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PURE_MODULES = [
    "fbl.arf",
    "fbl.dsn",
    "fbl.parse",
    "fbl.report_cli",
    "fbl.report",
    "fbl.recipients",
    "fbl.headers",
    "fbl.addresses",
    "fbl.bounce_text",
    "fbl.ses",
    "fbl.autoreply",
    "fbl.classification",
    "fbl.dkim",
    "fbl.kumomta",
    "fbl.providers",
    "fbl.rates",
    "fbl.actions",
    "fbl.events",
]


@pytest.mark.parametrize("module", PURE_MODULES)
def test_module_imports_no_django(module):
    script = (
        "import importlib, json, sys\n"
        f"importlib.import_module({module!r})\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'django' "
        "or m.startswith('django.'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
