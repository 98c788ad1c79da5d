"""Writes live in services (STYLE.md: "one services module per app holds every write; views,
serializers, admin actions, tasks and commands call it").

Every module of the project's apps is read (not imported) and each call that writes a model of
its own app is reported, unless the module is a services module (`APP/services.py` or
`APP/services/`) or a migration. A write is a manager or queryset call rooted at one of the
app's model classes (`Model.objects....create/update/delete/...`), or `.save()` / `.delete()` on
any object: an instance's model cannot be told from the source, so every one counts.
Related managers (`stream.topics.create(...)`) and querysets kept in a variable are not traced.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]
APPS = ("compliance", "fbl", "suppression", "unsubscribe", "domains")  # app labels

QUERY_WRITES = frozenset(
    {
        "create",
        "update",
        "delete",
        "bulk_create",
        "bulk_update",
        "update_or_create",
        "get_or_create",
    }
)
INSTANCE_WRITES = frozenset({"save", "delete"})

# The few writes that stay outside services, each with why. (module, model or method, line text)
ALLOWED = {
    # The audit trail's one writer: services call it inside their own transactions, so the
    # audit row commits or rolls back with the change it records.
    ("compliance/audit.py", "AuditEvent.objects.create"),
    # The model's own save(), overriding Model.save.
    ("compliance/models.py", "super().save"),
    # Admin save_model of an API key's plain settings (its name and operator flag); keys are
    # issued and revoked through compliance.services.
    ("compliance/admin.py", "obj.save"),
    # Due times of opt-outs recorded before they had them: called by migration 0015 with its
    # historical models and by `manage.py backfill_deadlines`, so it takes the model classes.
    ("compliance/deadline_backfill.py", "OptOutRequest.objects.update"),
}


def _root(node: ast.AST) -> ast.AST:
    """The start of an attribute/call chain: `Model` in `Model.objects.filter(...).update`."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return node


def _chain_has_manager(node: ast.AST) -> bool:
    while isinstance(node, ast.Call | ast.Attribute):
        if isinstance(node, ast.Attribute) and node.attr in ("objects", "_default_manager"):
            return True
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def writes_in(source: str, models: set[str]) -> list[tuple[int, str]]:
    """(line, what) for each write call in `source` on one of `models` (class names)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        method, receiver = node.func.attr, node.func.value
        root = _root(receiver)
        if (
            method in QUERY_WRITES
            and isinstance(root, ast.Name)
            and root.id in models
            and _chain_has_manager(receiver)
        ):
            found.append((node.lineno, f"{root.id}.objects.{method}"))
        elif method in INSTANCE_WRITES and not _chain_has_manager(receiver):
            if isinstance(receiver, ast.Call) and getattr(receiver.func, "id", "") == "super":
                found.append((node.lineno, f"super().{method}"))
            elif isinstance(receiver, ast.Name | ast.Attribute):
                found.append((node.lineno, f"{ast.unparse(receiver)}.{method}"))
    return found


def _is_exempt(path: Path) -> bool:
    parts = path.relative_to(ROOT).parts
    return "migrations" in parts or "services" in parts or path.name == "services.py"


def project_writes() -> list[tuple[str, int, str]]:
    found = []
    for app in APPS:
        config = apps.get_app_config(app)
        models = {model.__name__ for model in config.get_models()}
        for path in sorted(Path(config.path).rglob("*.py")):
            if _is_exempt(path):
                continue
            name = path.relative_to(ROOT).as_posix()
            for line, what in writes_in(path.read_text(), models):
                found.append((name, line, what))
    return found


def test_every_write_of_an_apps_models_is_in_its_services():
    outside = [
        f"{name}:{line} {what}"
        for name, line, what in project_writes()
        if (name, what) not in ALLOWED
    ]
    assert outside == [], "writes outside services (move them into APP/services):\n" + "\n".join(
        outside
    )


def test_every_allowed_exception_is_still_needed():
    # An allow-list entry whose write has gone must go too, so the list stays small and true.
    found = {(name, what) for name, _, what in project_writes()}
    assert ALLOWED - found == set()


@pytest.mark.parametrize(
    "source",
    [
        "Thing.objects.create(a=1)",
        "Thing.objects.filter(pk=1).update(a=2)",
        "Thing.objects.select_for_update().get_or_create(a=1)",
        "Thing.objects.bulk_create(rows)",
        "Thing._default_manager.filter(a=1).delete()",
        "thing.save(update_fields=['a'])",
        "self.thing.delete()",
    ],
)
def test_the_checker_sees_each_kind_of_write(source):
    assert len(writes_in(source, {"Thing"})) == 1


@pytest.mark.parametrize(
    "source",
    [
        "Other.objects.create(a=1)",  # another app's model
        "seen.update(more)",  # a set or dict
        "Thing.objects.filter(a=1).count()",
        "bar.update(3)",
    ],
)
def test_the_checker_passes_reads_and_other_apps_models(source):
    assert writes_in(source, {"Thing"}) == []
