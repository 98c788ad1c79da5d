from django.core.management.base import BaseCommand, CommandError

from compliance import audit, roles, services
from compliance.errors import ServiceError
from compliance.models import Tenant


class Command(BaseCommand):
    help = (
        "Create a staff user with a role, optionally limited to tenants, and print a generated "
        "password; the password is the last line of output."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the user name to log in with")
        parser.add_argument(
            "--role",
            required=True,
            help="; ".join(f"{r.name}: {r.description}" for r in roles.ROLES.values()),
        )
        parser.add_argument(
            "--tenant",
            dest="tenants",
            action="extend",
            nargs="+",
            default=[],
            metavar="SLUG",
            help="limit the user to these tenants (repeatable); without it: every tenant",
        )
        parser.add_argument("--email", default="", help="the user's address, for alerts")

    def handle(self, *args, name, role, tenants, email, **options):
        if role not in roles.ROLES:
            raise CommandError(
                f"unknown role {role!r}; use one of {', '.join(roles.ROLES)}", returncode=2
            )
        found = Tenant.objects.in_bulk(tenants, field_name="slug")
        unknown = [slug for slug in tenants if slug not in found]
        if unknown:
            known = ", ".join(Tenant.objects.values_list("slug", flat=True)) or "none"
            raise CommandError(
                f"unknown tenant {', '.join(map(repr, unknown))}; known: {known}", returncode=2
            )
        with audit.acting_as(audit.Actor(label="command:create_staff_user", via="command")):
            try:
                user, password = services.create_staff_user(
                    username=name,
                    role=role,
                    tenants=[found[slug] for slug in tenants],
                    email=email,
                )
            except ServiceError as exc:
                raise CommandError(exc.message, returncode=2) from exc
        limited = f"limited to {', '.join(sorted(set(tenants)))}" if tenants else "every tenant"
        self.stdout.write(
            f"Created staff user {user.get_username()!r} ({roles.ROLES[role].group}; "
            f"{limited}). The password is shown only now:"
        )
        self.stdout.write(password)
