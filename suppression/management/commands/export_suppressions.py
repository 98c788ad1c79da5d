import os
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from compliance.models import Stream, Tenant
from suppression import exporting


class Command(BaseCommand):
    help = (
        "Export the active suppression list: keyed hashes with the change-feed cursor, for a "
        "relay's local mirror (--format hashes), or addresses as CSV (--format csv)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=("hashes", "csv"), default="hashes")
        parser.add_argument(
            "--stream", help="only entries that block this stream (of --tenant, default: default)"
        )
        parser.add_argument(
            "--tenant", help="tenant slug; without --stream: its entries and shared ones"
        )
        parser.add_argument(
            "--output", type=Path, help="file to write (replaced when complete); default stdout"
        )

    def handle(self, *args, format, stream=None, tenant=None, output=None, **options):
        tenant_obj = None
        if tenant or stream:
            tenant_obj = Tenant.objects.filter(slug=tenant or "default").first()
            if tenant_obj is None:
                raise CommandError(f"unknown tenant {tenant or 'default'!r}", returncode=2)
        stream_obj = None
        if stream:
            stream_obj = Stream.objects.filter(tenant=tenant_obj, slug=stream).first()
            if stream_obj is None:
                known = ", ".join(tenant_obj.streams.values_list("slug", flat=True)) or "none"
                raise CommandError(
                    f"unknown stream {stream!r} of tenant {tenant_obj.slug!r}; known: {known}",
                    returncode=2,
                )
        if output is None:
            self._write(self.stdout, format, tenant_obj, stream_obj)
            return
        # Written beside the target and renamed: a relay never loads a half-written file.
        fd, partial = tempfile.mkstemp(prefix=output.name, suffix=".part", dir=output.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                self._write(out, format, tenant_obj, stream_obj, name=str(output))
            os.replace(partial, output)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def _write(self, out, format, tenant, stream, *, name="stdout"):
        if format == "hashes":
            header, count = exporting.write_mirror_hashes(out, tenant=tenant, stream=stream)
            self.stderr.write(f"{count} hashes to {name} (change-feed cursor {header.cursor})")
        else:
            count = exporting.write_csv(out, tenant=tenant, stream=stream)
            self.stderr.write(f"{count} entries to {name}")
