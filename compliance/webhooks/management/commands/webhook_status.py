import json

from django.core.management.base import BaseCommand

from compliance.webhooks import selectors


class Command(BaseCommand):
    help = "Per downstream endpoint: deliveries delivered, pending and dead."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON array")

    def handle(self, *args, **options):
        report = selectors.status_counts()
        if options["json"]:
            self.stdout.write(json.dumps(report))
            return
        if not report:
            self.stdout.write("No downstream endpoints.")
            return
        for row in report:
            state = "" if row["active"] else " (inactive)"
            self.stdout.write(
                f"#{row['endpoint']} {row['url']}{state}: {row['delivered']} delivered, "
                f"{row['pending']} pending, {row['dead']} dead"
            )
