from django.apps import AppConfig


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"

    def ready(self) -> None:
        # checks: registers the settings' system checks; schema: the OpenAPI scheme;
        # after_response: its request signals.
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.db.models.signals import post_migrate

        from compliance import after_response, audit, checks, roles, schema  # noqa: F401
        from compliance.models import (
            ApiKey,
            SendingIdentity,
            StaffTenant,
            Stream,
            Tenant,
            Topic,
        )

        # Staff and API changes to these models are recorded whoever makes them (admin, API,
        # command), so the trail cannot be bypassed by a code path that forgets to write it.
        audit.track(Tenant)
        audit.track(Stream)
        audit.track(Topic)
        audit.track(ApiKey, redact=("key_hash",))
        audit.track(SendingIdentity)

        # Who may do what is audited like the data itself: staff users, groups, the permissions
        # and groups they are given, the tenants they are limited to, and every login.
        user = get_user_model()
        audit.track(user, redact=("password",), ignore=("last_login",))
        audit.track(Group)
        audit.track_memberships(user.groups, field="groups")
        audit.track_memberships(user.user_permissions, field="user_permissions")
        audit.track_memberships(Group.permissions, field="permissions")
        audit.track(StaffTenant)
        audit.track_logins()

        # The role groups get the permissions of every app, those migrated after 0017 too.
        post_migrate.connect(roles.sync_after_migrate, dispatch_uid="compliance-role-groups")
