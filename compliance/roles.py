"""Staff roles: the three groups staff are put in, and the permissions each one holds.

| role      | group                | may                                                     |
| --------- | -------------------- | ------------------------------------------------------- |
| `officer` | `compliance officer` | everything in the project's apps: lifting complaint,    |
|           |                      | objection, erasure and legal entries                    |
|           |                      | (`suppression.lift_protected`) and deadline alerts too  |
| `analyst` | `compliance analyst` | view only                                               |
| `support` | `support agent`      | view; add suppressions; lift, with a reason, entries    |
|           |                      | that are not protected (bounces, invalid, manual, plain |
|           |                      | unsubscribes); open data-subject requests               |

Support may lift a plain unsubscribe: the everyday case is the recipient asking to be mailed
again, and the lift's reason stays in the entry's history. Complaint, objection, erasure and
legal entries record a recipient's or a regulator's will (GDPR Art. 17 and 21(3), a provider
complaint): only `suppression.lift_protected` lifts them (suppression/rules.py, PROTECTED), and
support never holds it.

A role is a rule over every permission of the project's apps (compliance, suppression,
unsubscribe, fbl and every app under them), not a fixed list, so apps added later are covered
without editing this table. The groups are made by migration compliance 0017 and brought up to
date after every `migrate` (a post_migrate receiver, once every app's permissions exist); a
later migration may call `sync_groups(apps=apps, using=...)` as 0017 does. The three groups are
managed: their permissions are set back to this table on each sync, so a different set belongs
in a group of another name. Permissions of Django's own apps (users, groups) are in no role:
whoever manages staff can change anyone's rights, and that stays with superusers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.apps import apps as global_apps
from django.db import DEFAULT_DB_ALIAS, router

# Top-level packages of the project: their apps' permissions are the ones roles hand out.
PROJECT_PACKAGES = ("compliance", "suppression", "unsubscribe", "fbl")

LIFT_PROTECTED = ("suppression", "lift_protected")
# Who is limited to which tenant is staff management, like users and groups: in no role.
STAFF_MANAGEMENT = frozenset(
    ("compliance", f"{verb}_stafftenant") for verb in ("add", "change", "delete")
)


@dataclass(frozen=True)
class Role:
    name: str
    group: str
    description: str
    everything: bool = False
    views: bool = False
    also: frozenset[tuple[str, str]] = frozenset()
    never: frozenset[tuple[str, str]] = frozenset()

    def grants(self, app_label: str, codename: str) -> bool:
        """Whether the role holds the permission `app_label.codename` of a project app."""
        if (app_label, codename) in self.never or (app_label, codename) in STAFF_MANAGEMENT:
            return False
        return (
            self.everything
            or (self.views and codename.startswith("view_"))
            or (app_label, codename) in self.also
        )


ROLES = {
    "officer": Role(
        name="officer",
        group="compliance officer",
        description="everything, lifting protected entries and deadline alerts included",
        everything=True,
    ),
    "analyst": Role(
        name="analyst",
        group="compliance analyst",
        description="read only",
        views=True,
    ),
    "support": Role(
        name="support",
        group="support agent",
        description="view; add suppressions and lift those not protected; open data-subject "
        "requests",
        views=True,
        also=frozenset(
            {
                ("suppression", "add_suppression"),
                # The lift action: suppression.services.lift still refuses protected entries.
                ("suppression", "change_suppression"),
                ("dsr", "add_datasubjectrequest"),
            }
        ),
        never=frozenset({LIFT_PROTECTED}),
    ),
}


def project_app_labels() -> frozenset[str]:
    """Labels of the installed apps of the project (`consent`, `dsr`, `fbl`, ...). Read from
    the installed apps, since a migration's historical apps do not know their packages."""
    return frozenset(
        config.label
        for config in global_apps.get_app_configs()
        if config.name.split(".")[0] in PROJECT_PACKAGES
    )


def sync_groups(
    *, apps=global_apps, using: str = DEFAULT_DB_ALIAS, roles: Iterable[str] | None = None
) -> dict[str, object]:
    """Make each role's group (all roles, or those named) exist and hold exactly the role's
    permissions among those in the database. Returns the groups by role name. `apps`: a
    migration's historical apps, or the installed ones."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    known = list(
        permission_model.objects.using(using)
        .filter(content_type__app_label__in=project_app_labels())
        .values_list("pk", "content_type__app_label", "codename")
    )
    groups = {}
    for name in roles or ROLES:
        role = ROLES[name]
        group, _ = group_model.objects.using(using).get_or_create(name=role.group)
        group.permissions.set([pk for pk, app, code in known if role.grants(app, code)])
        groups[name] = group
    return groups


def group_of(role: str):
    """The role's group, made or brought up to date first."""
    return sync_groups(roles=[role])[role]


def sync_after_migrate(sender, app_config, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate receiver. The signal comes once per app, each after that app's permissions
    are made: the groups are synced at the last one, when every permission exists."""
    with_models = [c for c in global_apps.get_app_configs() if c.models_module is not None]
    if not with_models or app_config.label != with_models[-1].label:
        return
    if not router.allow_migrate_model(using, global_apps.get_model("auth", "Group")):
        return
    sync_groups(using=using)
