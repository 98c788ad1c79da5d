from django.conf import settings
from django.core.management.base import BaseCommand

from unsubscribe import services, spool


class Command(BaseCommand):
    help = (
        "Apply opt-outs captured to the local spool while the database was unreachable. Run it "
        "from a timer on every web host; a web process that finds the spool non-empty also "
        "drains it in the background. One drainer at a time: this waits for a running one."
    )

    def handle(self, *args, **options):
        applied = services.drain_spool(wait=True)
        left = sum(1 for _ in spool.pending(settings.UNSUBSCRIBE_SPOOL_DIR))
        self.stdout.write(f"applied {applied} spooled opt-out(s); {left} left")
        if left:
            raise SystemExit(75)  # EX_TEMPFAIL: the database is still not taking them
