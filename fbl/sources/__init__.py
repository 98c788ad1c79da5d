"""Every way reports come in, one module each, in one registry (name → source).

| source    | module                 | endpoint                                        |
| --------- | ---------------------- | ----------------------------------------------- |
| `mail`    | fbl/sources/mail.py    | `POST /api/v1/reports`, `manage.py ingest_mail` |
| `kumomta` | fbl/sources/kumomta.py | `POST /api/v1/events/kumomta`                   |
| `anymail` | fbl/sources/anymail.py | `POST /api/v1/events/esp/<esp>/tracking/`       |

What they share is fbl/sources/base.py: the name, the authentication, the tenant binding
(`Provenance.bind`, fbl/provenance.py) and the loop that stores and acts on events. Every
module of this package is imported here, so a new source is its module alone.
"""

from __future__ import annotations

import importlib
import pkgutil

from fbl.sources.base import REGISTRY, Source, register

__all__ = ["REGISTRY", "Source", "discover", "get", "register"]


def discover() -> dict[str, Source]:
    """Import every module of this package (each registers its source); the registry."""
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base" and not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return REGISTRY


def get(name: str) -> Source:
    return REGISTRY[name]


discover()
