"""Which tenants a staff user sees (DESIGN.md, Tenants: staff limited to a tenant act on that
tenant only).

A user with `StaffTenant` rows is limited to those tenants: the admin and the dashboard show and
change only their rows. A user with none, and every superuser, sees every tenant. Rows of no
tenant (entries shared by every tenant, the operator's own keys, reports and requests) are for
staff who see every tenant; the suppression list alone shows its shared entries to limited staff
too, as blocked, the way a tenant's API key sees them (compliance/admin_scope.py).
"""

from __future__ import annotations

from django.db.models import Q, QuerySet

from compliance.models import StaffTenant, Tenant

_CACHED = "_staff_tenant_ids"
EVERY_TENANT = None


def tenant_ids_for(user) -> frozenset[int] | None:
    """The ids of the tenants `user` is limited to, or None when the user sees every tenant
    (superusers, and staff without any tenant). Someone not logged in sees none. Kept on the
    user object, which lives for one request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    if user.is_superuser:
        return EVERY_TENANT
    if not hasattr(user, _CACHED):
        ids = frozenset(
            StaffTenant.objects.filter(user_id=user.pk).values_list("tenant_id", flat=True)
        )
        setattr(user, _CACHED, ids or EVERY_TENANT)
    return getattr(user, _CACHED)


def forget(user) -> None:
    """Drop the kept answer after the user's tenants changed."""
    if hasattr(user, _CACHED):
        delattr(user, _CACHED)


def condition(path: str, tenant_ids: frozenset[int], *, shared: bool = False) -> Q:
    """Rows whose tenant, reached by the lookup `path` ("tenant", "stream__tenant", "pk" on
    the tenant itself), is one of `tenant_ids`; with `shared`, rows of no tenant as well."""
    if path == "pk":
        return Q(pk__in=tenant_ids)
    found = Q(**{f"{path}__in": tenant_ids})
    if shared:
        found |= Q(**{f"{path}__isnull": True})
    return found


def limit(queryset: QuerySet, user, path: str = "tenant", *, shared: bool = False) -> QuerySet:
    """`queryset` narrowed to the rows `user` may see (see `condition`)."""
    tenant_ids = tenant_ids_for(user)
    if tenant_ids is EVERY_TENANT:
        return queryset
    return queryset.filter(condition(path, tenant_ids, shared=shared))


def tenants_for(user) -> QuerySet[Tenant]:
    return limit(Tenant.objects.all(), user, "pk")


def sees(user, tenant_id: int | None) -> bool:
    """Whether `user` sees the rows of the tenant `tenant_id` (None: rows of no tenant, which
    only staff who see every tenant do)."""
    tenant_ids = tenant_ids_for(user)
    return tenant_ids is EVERY_TENANT or (tenant_id is not None and tenant_id in tenant_ids)


def limited_user_ids() -> QuerySet:
    """Ids of the users limited to some tenants: not told of what concerns every tenant (the
    deadline and complaint-rate mails list every tenant's rows)."""
    return StaffTenant.objects.filter(user__is_superuser=False).values("user_id")


def colleagues(user) -> QuerySet:
    """The staff users a tenant-limited `user` may name (a request's handler): themselves and
    staff limited to one of the same tenants. Everyone for staff who see every tenant."""
    from django.contrib.auth import get_user_model

    users = get_user_model().objects.filter(is_staff=True)
    tenant_ids = tenant_ids_for(user)
    if tenant_ids is EVERY_TENANT:
        return users
    sharing = StaffTenant.objects.filter(tenant_id__in=tenant_ids).values("user_id")
    return users.filter(Q(pk=user.pk) | Q(pk__in=sharing))
