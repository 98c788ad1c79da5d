from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from suppression import partitioning


class Command(BaseCommand):
    help = (
        "Rebuild the suppression list (PostgreSQL) as N hash partitions of the address hash, "
        "keeping every entry and id. Checks go on reading throughout; writes wait for the copy."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--partitions",
            type=int,
            help=(
                f"how many partitions, 1 to {partitioning.MAX_PARTITIONS} "
                "(default: SUPPRESSION_PARTITIONS)"
            ),
        )

    def handle(self, *args, partitions=None, **options):
        if partitions is None:
            partitions = settings.SUPPRESSION_PARTITIONS
        try:
            partitioning.check_partitions(partitions, name="--partitions")
        except partitioning.PartitioningError as exc:
            raise CommandError(str(exc), returncode=2) from None
        try:
            before = partitioning.partition_count(connection)
            if before == partitions:
                self.stdout.write(
                    f"{partitioning.TABLE} already has {partitioning.describe(before)}: "
                    "nothing to do"
                )
                return
            self.stdout.write(
                f"{partitioning.TABLE}: {partitioning.describe(before)}; rebuilding as "
                f"{partitioning.describe(partitions)}"
            )
            done = partitioning.rebuild(connection, partitions=partitions)
        except partitioning.PartitioningError as exc:
            raise CommandError(str(exc)) from None
        cancelled = f"; {done.cancelled} deadlocked writer(s) cancelled" if done.cancelled else ""
        self.stdout.write(
            f"rebuilt {partitioning.TABLE} as {partitioning.describe(done.after)} "
            f"(was {partitioning.describe(done.before)}): {done.rows} entries copied; writes "
            f"waited {done.writes_held_seconds:.2f} s, reads {done.reads_held_seconds:.3f} s"
            f"{cancelled}"
        )
        if done.retired_left:
            self.stderr.write(
                f"the old table {partitioning.RETIRED} could not be dropped yet (a long "
                "transaction holds a table it refers to); the next run of this command drops it"
            )
