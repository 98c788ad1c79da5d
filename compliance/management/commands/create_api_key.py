from django.core.management.base import BaseCommand, CommandError

from compliance import audit, services
from compliance.errors import ServiceError
from compliance.models import Tenant


class Command(BaseCommand):
    help = "Create an API key and print it; the key is the last line of output."

    def add_arguments(self, parser):
        parser.add_argument("name", help="who holds the key, e.g. 'kumomta-east'")
        parser.add_argument(
            "--permissions",
            "--scopes",
            dest="permissions",
            required=True,
            help="comma-separated, e.g. suppression:read,reports:write",
        )
        parser.add_argument("--tenant", help="bind the key to this tenant's slug")
        parser.add_argument(
            "--operator-level",
            action="store_true",
            help="a relay of the operator's own: with --tenant, its hard bounces are still "
            "shared by every tenant",
        )

    def handle(self, *args, name, permissions, tenant=None, operator_level=False, **options):
        tenant_obj = None
        if tenant:
            tenant_obj = Tenant.objects.filter(slug=tenant).first()
            if tenant_obj is None:
                known = ", ".join(Tenant.objects.values_list("slug", flat=True)) or "none"
                raise CommandError(f"unknown tenant {tenant!r}; known: {known}", returncode=2)
        with audit.acting_as(audit.Actor(label="command:create_api_key", via="command")):
            try:
                api_key, plain = services.issue_api_key(
                    name=name,
                    permissions=permissions.split(","),
                    tenant=tenant_obj,
                    operator_level=operator_level,
                )
            except ServiceError as exc:
                raise CommandError(exc.message, returncode=2) from exc
        bound = f" for tenant {tenant_obj.slug}" if tenant_obj else ""
        self.stdout.write(
            f"Created API key {api_key.name!r}{bound} with permissions "
            f"{', '.join(api_key.permissions)}. It is shown only now:"
        )
        self.stdout.write(plain)
