import asyncio
import signal
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from suppression import policy_server


class Command(BaseCommand):
    help = (
        "Serve the Postfix SMTP access policy delegation protocol (check_policy_service "
        "inet:HOST:PORT): REJECT suppressed recipients, DUNNO otherwise."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port", type=int, default=10040, help="0 picks a free port (printed at start)"
        )
        parser.add_argument(
            "--threads", type=int, help="database threads, each with one connection (default 4)"
        )
        parser.add_argument(
            "--idle-timeout", type=float, help="close a connection silent this long (default 330)"
        )
        parser.add_argument(
            "--refresh-seconds",
            type=float,
            help="reload the sending identities this often (default 30)",
        )
        parser.add_argument(
            "--state-file",
            type=Path,
            help="keep the last known sending identities here, for a start while the "
            "database is down",
        )

    def handle(self, *args, host, port, threads, idle_timeout, refresh_seconds, state_file, **kw):
        try:
            config = policy_server.PolicySettings.from_django(
                host=host,
                port=port,
                threads=threads,
                idle_timeout=idle_timeout,
                refresh_seconds=refresh_seconds,
                state_file=state_file,
            )
        except ValueError as exc:
            raise CommandError(str(exc), returncode=2) from exc
        try:
            asyncio.run(self._serve(config))
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc

    async def _serve(self, config):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)

        def ready(address):
            # A line that supervisors and tests wait for; the port matters with --port 0.
            self.stdout.write(f"listening on {address[0]}:{address[1]}")
            sys.stdout.flush()

        await policy_server.serve(config, stop=stop, on_ready=ready)
