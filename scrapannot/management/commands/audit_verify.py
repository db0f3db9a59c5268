from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from scrapannot.audit import verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit non-zero and name the first broken event."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--anchor",
            metavar="SEQ:HASH",
            help="a head printed by an earlier run and kept outside the database; catches "
            "deletion of the newest events",
        )

    def handle(self, *args: Any, anchor: str | None = None, **options: Any) -> None:
        parsed: tuple[int, str] | None = None
        if anchor:
            seq, _, digest = anchor.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise CommandError("--anchor must look like 1234:<64 hex characters>")
            parsed = (int(seq), digest.lower())
        report = verify_chain(anchor=parsed)
        if not report.ok:
            raise CommandError(
                f"audit chain broken at event #{report.broken_seq}: {report.reason} "
                f"({report.events} events read)"
            )
        self.stdout.write(
            f"audit chain ok: {report.events} events; head {report.head_seq}:{report.head_hash}"
        )
