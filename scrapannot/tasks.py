"""Cross-cutting scheduled tasks. Thin: they call one domain function."""

from typing import Any

from celery import shared_task

from scrapannot import audit


@shared_task(name="scrapannot.verify_audit_chain", acks_late=True, time_limit=3600)
def verify_audit_chain() -> dict[str, Any]:
    report = audit.verify_and_record()
    return {"ok": report.ok, "events": report.events, "broken_seq": report.broken_seq}
