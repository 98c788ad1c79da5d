"""An access export as a ZIP of CSV files, one per kind of record. Pure: no Django.

Nested lists of rows (a suppression's history, a request's steps) get a file of their own that
names the parent's id; a nested mapping (a consent's evidence) becomes prefixed columns; any other
list is written as JSON in its cell.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import zipfile
from collections.abc import Iterable

# kind -> (key of the nested rows, file for them, column naming the parent)
CHILDREN = {
    "suppressions": ("history", "suppression_history", "suppression"),
    "requests": ("steps", "request_steps", "request"),
}


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _flat(row: dict, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat |= _flat(value, f"{prefix}{key}_")
        else:
            flat[f"{prefix}{key}"] = _cell(value)
    return flat


def to_csv(rows: Iterable[dict]) -> str:
    flat = [_flat(row) for row in rows]
    columns: list[str] = []
    for row in flat:
        columns.extend(c for c in row if c not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or ["none"], lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue()


def files_of(export: dict, kinds: Iterable[str]) -> dict[str, str]:
    """File name -> CSV text, for each kind (and each kind's nested rows)."""
    files: dict[str, str] = {}
    for kind in kinds:
        rows = export.get(kind, [])
        child = CHILDREN.get(kind)
        if child is None:
            files[f"{kind}.csv"] = to_csv(rows)
            continue
        key, name, parent = child
        files[f"{kind}.csv"] = to_csv({k: v for k, v in row.items() if k != key} for row in rows)
        files[f"{name}.csv"] = to_csv(
            {parent: row["id"], **item} for row in rows for item in row.get(key, [])
        )
    return files


def zip_of(export: dict, kinds: Iterable[str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files_of(export, kinds).items():
            # With a byte-order mark, so spreadsheet programs read the UTF-8 as UTF-8.
            archive.writestr(name, "\ufeff" + text)
    return out.getvalue()
