from django.core.management.base import BaseCommand, CommandError

from compliance import audit
from compliance.errors import ServiceError
from compliance.models import Tenant
from compliance.webhooks import events
from compliance.webhooks.services import endpoints


class Command(BaseCommand):
    help = (
        "Add a downstream system that is sent signed webhooks (Standard Webhooks) of opt-outs, "
        "suppressions and withdrawals. Its secret is the last line of output."
    )

    def add_arguments(self, parser):
        parser.add_argument("url", help="https://… where events are POSTed")
        parser.add_argument(
            "--events",
            required=True,
            help=f"comma-separated: {','.join(events.TYPES)}",
        )
        parser.add_argument("--tenant", help="only this tenant's events (default: every tenant)")
        parser.add_argument("--description", default="", help="who runs it, e.g. 'CRM'")

    def handle(self, *args, url, events, tenant=None, description="", **options):
        tenant_obj = None
        if tenant:
            tenant_obj = Tenant.objects.filter(slug=tenant).first()
            if tenant_obj is None:
                known = ", ".join(Tenant.objects.values_list("slug", flat=True)) or "none"
                raise CommandError(f"unknown tenant {tenant!r}; known: {known}", returncode=2)
        actor = audit.Actor(label="command:add_downstream_endpoint", via="command")
        with audit.acting_as(actor):
            try:
                endpoint = endpoints.add_endpoint(
                    url=url, event_types=events, tenant=tenant_obj, description=description
                )
            except ServiceError as exc:
                raise CommandError(exc.message, returncode=2) from exc
        scope = f"tenant {tenant_obj.slug}" if tenant_obj else "every tenant"
        self.stdout.write(
            f"Added endpoint #{endpoint.pk} {endpoint.url} for {scope}: "
            f"{', '.join(endpoint.event_types)}. Its signing secret is shown only now:"
        )
        self.stdout.write(endpoint.secret)
