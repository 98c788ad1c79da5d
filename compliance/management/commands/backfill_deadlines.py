from django.core.management.base import BaseCommand
from tqdm import tqdm

from compliance import deadline_backfill
from compliance.models import OptOutRequest, Tenant


class Command(BaseCommand):
    help = (
        "Give opt-outs without due times their 48-hour and CAN-SPAM due times (as migration "
        "0015 did), with a progress bar on stderr. --recompute also redoes every open opt-out, "
        "e.g. after a tenant's time zone or deadlines changed. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--recompute",
            action="store_true",
            help="also recompute the due times of open opt-outs (not yet propagated)",
        )

    def handle(self, *args, recompute=False, **options):
        total = deadline_backfill.pending(OptOutRequest, recompute=recompute).count()
        # The bar draws with carriage returns: it writes to the stream itself, not through
        # Django's wrapper, which would end every update with a newline.
        stream = getattr(self.stderr, "_out", self.stderr)
        with tqdm(total=total, unit=" opt-outs", desc="due times", file=stream) as bar:
            filled = deadline_backfill.backfill(
                OptOutRequest, Tenant, progress=bar.update, recompute=recompute
            )
        self.stdout.write(f"Filled the due times of {filled} opt-out(s).")
