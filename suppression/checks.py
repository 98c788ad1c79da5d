"""System checks of the suppression list's settings (ids listed in compliance/checks.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, register

from suppression.partitioning import PartitioningError, check_partitions
from suppression.policy import fail_action
from suppression.policy_server import split_stream_name


@register
def check_policy_fail_actions(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for name in ("POLICY_FAIL_COMMERCIAL", "POLICY_FAIL_TRANSACTIONAL"):
        try:
            fail_action(getattr(settings, name))
        except ValueError as exc:
            errors.append(
                Error(
                    f"{name} is not a policy fail action: {exc}",
                    hint=f"Set {name} to e.g. DEFER_IF_PERMIT, DUNNO or '450 4.3.0 text'.",
                    id="compliance.E009",
                )
            )
    return errors


@register
def check_policy_default_stream(app_configs=None, **kwargs) -> list[Error]:
    try:
        split_stream_name(settings.POLICY_DEFAULT_STREAM)
    except ValueError as exc:
        hint = "Name the stream by its tenant's and its own slug, e.g. default/marketing."
        return [Error(str(exc), hint=hint, id="compliance.E010")]
    return []


@register
def check_suppression_partitions(app_configs=None, **kwargs) -> list[Error]:
    try:
        check_partitions(settings.SUPPRESSION_PARTITIONS, name="SUPPRESSION_PARTITIONS")
    except PartitioningError as exc:
        return [
            Error(
                str(exc),
                hint=(
                    "Set SUPPRESSION_PARTITIONS to the number of hash partitions of the "
                    "suppression list (default 16; see docs/deploy.md)."
                ),
                id="compliance.E008",
            )
        ]
    return []
