"""Which tenants a staff user may see.

`tenant_ids_for(user)` answers the ids of the tenants the user is limited to, or None when the
user sees every tenant. Every admin page and the dashboard ask it; staff limited to tenants see
and change only those tenants' rows. Until staff can be limited (roles), everybody sees every
tenant.
"""

from __future__ import annotations


def tenant_ids_for(user) -> frozenset[int] | None:
    """The tenants `user` is limited to, or None: every tenant."""
    return None
