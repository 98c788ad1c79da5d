import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from compliance.check_results import as_json
from compliance.domains import checks, services
from compliance.domains.models import SendingDomain
from compliance.domains.resolver import CheckResolver


class Command(BaseCommand):
    help = (
        "Read a domain's SPF, DKIM, DMARC and MX records and judge them against the Gmail and "
        "Yahoo bulk-sender rules. Exit 0 whatever the verdict, 2 for bad arguments. A sending "
        "domain's result is kept in its history."
    )

    def add_arguments(self, parser):
        parser.add_argument("domain", help="the domain mail is sent from, e.g. example.com")
        parser.add_argument(
            "--selector",
            action="append",
            dest="selectors",
            metavar="S",
            help="a DKIM selector to read the key of (repeatable); default: the sending "
            "domain's own selectors",
        )
        parser.add_argument(
            "--nameserver",
            action="append",
            dest="nameservers",
            metavar="HOST[:PORT]",
            help="the DNS server to ask, an IP address (repeatable); default: "
            "DOMAIN_NAMESERVERS, else the system resolver",
        )
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args, domain, selectors=None, nameservers=None, json=False, **options):
        try:
            name = checks.normalise_domain(domain)
            if nameservers is not None:
                CheckResolver(nameservers, timeout=settings.DOMAIN_DNS_TIMEOUT)
            for selector in selectors or ():
                checks.normalise_selector(selector)
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc

        sending_domain = SendingDomain.objects.filter(domain=name).first()
        if selectors is None and sending_domain is not None:
            selectors = sending_domain.dkim_selectors
        results = checks.check_domain(
            name,
            selectors=selectors or (),
            nameservers=settings.DOMAIN_NAMESERVERS if nameservers is None else nameservers,
            timeout=settings.DOMAIN_DNS_TIMEOUT,
        )
        if sending_domain is not None:
            services.record_check(sending_domain, results)

        answer = as_json(results, domain=name)
        if json:
            self.stdout.write(_dumps(answer))
            return
        self.stdout.write(f"{name}: {answer['verdict']}")
        width = max(len(check.name) for check in results)
        for check in results:
            self.stdout.write(f"  {check.name:<{width}}  {check.status:<4}  {check.message}")
        if sending_domain is not None:
            self.stdout.write(f"Kept in the history of the sending domain {name}.")


def _dumps(answer: dict) -> str:
    # `json` is the option's name inside handle().
    return json.dumps(answer, ensure_ascii=False)
