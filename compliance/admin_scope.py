"""Tenant limits in the admin (compliance/staff_scope.py says who sees which tenants).

Every registered ModelAdmin is one of two kinds, and tests/compliance/test_admin_scope.py walks
the registry to keep it so:

- `TenantScopedAdmin`, for a model with a tenant (directly or through its stream, endpoint, ...:
  `tenant_path`). A tenant-limited user's lists, change pages (404 for another tenant's row),
  actions, filters and foreign-key choices hold only their tenants' rows, and they cannot make
  a row of no tenant. Rows of no tenant are hidden from them unless `shared_rows_visible`
  (the suppression list's shared "never mail" entries), and then shown read-only.
- `OperatorOnlyAdmin`, for a model with no tenant (the audit trail, staff users and groups):
  only staff who see every tenant reach it.

Admin pages outside a ModelAdmin's own (the proof page, the consent import) limit their forms
with `limit_tenant_choices`.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import get_fields_from_path
from django.contrib.auth import get_user_model
from django.http import Http404

from compliance import staff_scope
from compliance.models import Tenant


def limit_tenant_choices(field: forms.ModelChoiceField, user) -> None:
    """A form's tenant choice: only the user's tenants. A tenant-limited user must pick one:
    "shared by all" or "every tenant" is not theirs to choose."""
    tenant_ids = staff_scope.tenant_ids_for(user)
    if tenant_ids is staff_scope.EVERY_TENANT:
        return
    field.queryset = field.queryset.filter(pk__in=tenant_ids)
    field.required = True
    field.empty_label = None


def related_tenant_path(model, admin_site) -> str | None:
    """The lookup from `model` to its tenant, as its registered admin declares it ("pk" for the
    tenant itself), or None for a model the admin does not scope."""
    if model is Tenant:
        return "pk"
    model_admin = admin_site._registry.get(model)
    if isinstance(model_admin, TenantScopedAdmin):
        return model_admin.tenant_path
    return None


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A list filter on a tenant, stream, endpoint, ... offering only the user's tenants'."""

    def field_choices(self, field, request, model_admin):
        path = related_tenant_path(field.related_model, model_admin.admin_site)
        tenant_ids = staff_scope.tenant_ids_for(request.user)
        if path is None or tenant_ids is staff_scope.EVERY_TENANT:
            return super().field_choices(field, request, model_admin)
        return field.get_choices(
            include_blank=False,
            ordering=self.field_admin_ordering(field, request, model_admin),
            limit_choices_to=staff_scope.condition(path, tenant_ids),
        )


class TenantScopedAdmin:
    """Mix in first, before admin.ModelAdmin (or a subclass of it)."""

    # The lookup from the model to its tenant; "pk" for the tenant itself.
    tenant_path = "tenant"
    # Rows of no tenant shown (read-only) to tenant-limited staff.
    shared_rows_visible = False

    def get_queryset(self, request):
        return staff_scope.limit(
            super().get_queryset(request),
            request.user,
            self.tenant_path,
            shared=self.shared_rows_visible,
        )

    def get_object(self, request, object_id, from_field=None):
        found = super().get_object(request, object_id, from_field)
        if found is None and staff_scope.tenant_ids_for(request.user) is not None:
            # Another tenant's row is as unknown to a limited user as one that never was.
            raise Http404("no such row among your tenants' rows")
        return found

    def tenant_id_of(self, obj) -> int | None:
        if self.tenant_path == "pk":
            return obj.pk
        *hops, last = self.tenant_path.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
            if obj is None:
                return None
        return getattr(obj, f"{last}_id")

    def is_shared(self, request, obj) -> bool:
        """Whether `obj` is a row of no tenant shown to a tenant-limited user."""
        return (
            obj is not None
            and staff_scope.tenant_ids_for(request.user) is not None
            and self.tenant_id_of(obj) is None
        )

    def in_scope(self, request, obj) -> bool:
        """Whether `obj` (None: the model as a whole) is of a tenant the user sees."""
        return obj is None or staff_scope.sees(request.user, self.tenant_id_of(obj))

    def has_view_permission(self, request, obj=None):
        visible = self.in_scope(request, obj) or (
            self.shared_rows_visible and self.tenant_id_of(obj) is None
        )
        return visible and super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self.in_scope(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.in_scope(request, obj) and super().has_delete_permission(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        tenant_ids = staff_scope.tenant_ids_for(request.user)
        related = db_field.related_model
        path = related_tenant_path(related, self.admin_site)
        if tenant_ids is not None and path is not None:
            kwargs["queryset"] = staff_scope.limit(
                related._default_manager.all(), request.user, path
            )
        elif tenant_ids is not None and related is get_user_model():
            kwargs["queryset"] = staff_scope.colleagues(request.user)
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if tenant_ids is not None and related is Tenant and field is not None:
            # No tenant would make a row shared by every tenant, or the operator's own.
            field.required = True
            field.empty_label = None
        return field

    def get_list_filter(self, request):
        found = super().get_list_filter(request)
        if staff_scope.tenant_ids_for(request.user) is None:
            return found
        return [self._scoped_filter(item) for item in found]

    def _scoped_filter(self, item):
        if isinstance(item, str):
            field = get_fields_from_path(self.model, item)[-1]
            if getattr(field, "related_model", None) is not None:
                if related_tenant_path(field.related_model, self.admin_site) is not None:
                    return (item, ScopedRelatedFilter)
            return item
        if isinstance(item, tuple | list) and issubclass(item[1], admin.RelatedFieldListFilter):
            return (item[0], ScopedRelatedFilter)
        return item

    def response_action(self, request, queryset):
        # Actions change rows: shared rows a limited user may see are left out of them.
        if self.shared_rows_visible and staff_scope.tenant_ids_for(request.user) is not None:
            shared = queryset.filter(**{f"{self.tenant_path}__isnull": True})
            selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            if request.POST.get("select_across") == "1" or shared.filter(pk__in=selected).exists():
                self.message_user(
                    request,
                    "Entries shared by every tenant were left out: only staff who see every "
                    "tenant change them.",
                    messages.WARNING,
                )
            queryset = queryset.exclude(pk__in=shared.values("pk"))
        return super().response_action(request, queryset)


class OperatorOnlyAdmin:
    """For a model with no tenant: only staff who see every tenant reach it. Mix in first."""

    def _operator(self, request) -> bool:
        return staff_scope.tenant_ids_for(request.user) is staff_scope.EVERY_TENANT

    def has_module_permission(self, request):
        return self._operator(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._operator(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return self._operator(request) and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return self._operator(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._operator(request) and super().has_delete_permission(request, obj)

    def get_queryset(self, request):
        found = super().get_queryset(request)
        return found if self._operator(request) else found.none()
