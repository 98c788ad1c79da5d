import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from compliance import audit
from compliance.errors import ServiceError
from compliance.models import Tenant
from suppression import import_formats, services


class Command(BaseCommand):
    help = (
        "Import a suppression list from CSV (generic, SendGrid, Mailgun, Postmark, Amazon SES or "
        "Mailchimp exports, recognised from the header row). Rows already listed are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--format",
            choices=sorted(import_formats.FORMATS),
            help="skip recognition and read the file as this format",
        )
        parser.add_argument(
            "--tenant",
            default="default",
            help="tenant slug, or * for entries shared by all tenants",
        )

    def handle(self, *args, file: Path, format=None, tenant="default", **options):
        if not file.is_file():
            raise CommandError(f"no such file: {file}", returncode=2)
        tenant_obj = None
        if tenant != "*":
            tenant_obj = Tenant.objects.filter(slug=tenant).first()
            if tenant_obj is None:
                raise CommandError(f"unknown tenant {tenant!r}", returncode=2)
        actor = audit.Actor(label="command:import_suppressions", via="command")
        with audit.acting_as(actor):
            try:
                # Queued and run here, in this process, whatever the broker setting.
                job = services.create_job(
                    content=file.read_bytes(),
                    filename=file.name,
                    format_name=format,
                    tenant=tenant_obj,
                )
            except ServiceError as exc:
                raise CommandError(exc.message, returncode=2) from exc
            self.stdout.write(f"{file.name}: {job.format_name} format, {job.rows_total} rows")
            bar = tqdm(total=job.rows_total, unit="row", disable=not sys.stderr.isatty())
            done = 0

            def progress(current):
                nonlocal done
                bar.update(current.rows_done - done)
                done = current.rows_done

            job = services.run_import(job, on_progress=progress)
            bar.close()
        self.stdout.write(
            f"added {job.rows_added}, already listed {job.rows_existing}, bad {job.rows_bad}"
        )
        for error in job.errors[:20]:
            self.stderr.write(f"line {error['line']}: {error['error']} ({error['email']!r})")
        if job.rows_bad > 20:
            self.stderr.write(f"... and {job.rows_bad - 20} more bad rows")
