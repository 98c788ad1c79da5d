import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from compliance import audit
from compliance.consent import importing
from compliance.errors import ServiceError
from compliance.models import Tenant

SHOWN_ERRORS = 20


def _data_lines(path: Path) -> int:
    """Lines after the header, for the progress bar (a quoted field may span lines: a guess)."""
    with path.open("rb") as f:
        return max(0, sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b"")) - 1)


class Command(BaseCommand):
    help = (
        "Import consent records from CSV (header: address, purpose, action, basis, method, "
        "collected_at, ip, user_agent, page_url, form_id, wording or wording_id, "
        "privacy_notice_version, jurisdiction). Bad rows are reported by line; rows imported "
        "before are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--tenant", default="default", help="tenant slug (default: default)")

    def handle(self, *args, file: Path, tenant="default", **options):
        if not file.is_file():
            raise CommandError(f"no such file: {file}", returncode=2)
        tenant_obj = Tenant.objects.filter(slug=tenant).first()
        if tenant_obj is None:
            raise CommandError(f"unknown tenant {tenant!r}", returncode=2)
        bar = tqdm(total=_data_lines(file), unit="row", disable=not sys.stderr.isatty())

        def progress(outcome):
            bar.update(outcome.rows - bar.n)

        actor = audit.Actor(label="command:import_consents", via="command")
        try:
            with audit.acting_as(actor), file.open("rb") as source:
                outcome = importing.import_consents(
                    source=source, tenant=tenant_obj, on_progress=progress
                )
        except ServiceError as exc:
            raise CommandError(f"{file.name}: {exc.message}", returncode=2) from exc
        finally:
            bar.close()
        self.stdout.write(
            f"{file.name}: {outcome.rows} rows; added {outcome.added}, "
            f"already recorded {outcome.existing}, bad {outcome.bad}"
        )
        for error in outcome.errors[:SHOWN_ERRORS]:
            self.stderr.write(f"line {error['line']}: {error['error']}")
        if outcome.bad > SHOWN_ERRORS:
            self.stderr.write(f"... and {outcome.bad - SHOWN_ERRORS} more bad rows")
