import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from scrapannot.audit import seal_pending


class Command(BaseCommand):
    help = (
        "Seal the audit events committed so far into the hash chain (what Celery beat runs every "
        "second); with --every, keep doing it, as an always-on sequencer."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--every", type=float, default=0.0, metavar="SECONDS")

    def handle(self, *args: Any, every: float = 0.0, **options: Any) -> None:
        sealed = seal_pending()
        self.stdout.write(f"sealed {sealed} event(s)")
        while every > 0:
            time.sleep(every)
            close_old_connections()
            sealed = seal_pending(wait=False)
            if sealed:
                self.stdout.write(f"sealed {sealed} event(s)", ending="\n")
                self.stdout.flush()
