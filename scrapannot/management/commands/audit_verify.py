from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from scrapannot.audit import backlog, seal_pending, verify_chain


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain; exit non-zero and name the first broken event, or "
        "when an event has waited to be sealed longer than AUDIT_SEAL_MAX_DELAY_SECONDS."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--anchor",
            metavar="SEQ:HASH",
            help="a head printed by an earlier run and kept outside the database; catches "
            "deletion of the newest events",
        )
        parser.add_argument(
            "--seal",
            action="store_true",
            help="seal the committed events first (as the sequencer would), then verify",
        )

    def handle(
        self, *args: Any, anchor: str | None = None, seal: bool = False, **options: Any
    ) -> None:
        parsed: tuple[int, str] | None = None
        if anchor:
            seq, _, digest = anchor.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise CommandError("--anchor must look like 1234:<64 hex characters>")
            parsed = (int(seq), digest.lower())
        if seal:
            seal_pending()
        report = verify_chain(anchor=parsed)
        if not report.ok:
            raise CommandError(
                f"audit chain broken at event #{report.broken_seq}: {report.reason} "
                f"({report.events} events read)"
            )
        self.stdout.write(
            f"audit chain ok: {report.events} events; head {report.head_seq}:{report.head_hash}"
        )
        waiting = backlog()
        if waiting.count:
            self.stdout.write(
                f"{waiting.count} event(s) not sealed yet, the oldest {waiting.oldest_age_s:.1f} s"
            )
        if waiting.overdue:
            raise CommandError(
                f"audit sequencer behind: an event has waited {waiting.oldest_age_s:.0f} s to be "
                f"sealed (bound {waiting.max_delay_s:.0f} s); is Celery beat running?"
            )
