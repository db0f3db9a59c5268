"""Cross-cutting scheduled tasks. Thin: they call one domain function."""

from typing import Any

from celery import shared_task

from scrapannot import audit


@shared_task(name="scrapannot.verify_audit_chain", acks_late=True, time_limit=3600)
def verify_audit_chain() -> dict[str, Any]:
    report = audit.verify_and_record()
    return {"ok": report.ok, "events": report.events, "broken_seq": report.broken_seq}


# Every second from beat (migration 0006). A run that finds another sequencer sealing returns at
# once; the bound on the delay (AUDIT_SEAL_MAX_DELAY_SECONDS) leaves room for a few missed runs.
@shared_task(name="scrapannot.seal_audit_events", acks_late=True, time_limit=120)
def seal_audit_events() -> int:
    return audit.seal_pending(wait=False)
