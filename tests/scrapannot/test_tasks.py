import pytest

from scrapannot import audit
from scrapannot.models import AuditEvent
from scrapannot.tasks import verify_audit_chain
from tests.celery_worker import wait_for


@pytest.mark.django_db
def test_the_nightly_check_leaves_its_verdict_in_the_trail():
    audit.record(action="test.event")

    result = verify_audit_chain.apply().get()

    assert result == {"ok": True, "events": 1, "broken_seq": None}
    event = AuditEvent.objects.get(action="audit.verified")
    assert event.payload["head_seq"] == 1


@pytest.mark.django_db
def test_the_nightly_check_is_scheduled_in_celery_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="scrapannot.verify_audit_chain")
    assert task.enabled and task.crontab is not None


def test_a_real_worker_runs_the_check_through_redis(on_postgresql, celery_worker):
    audit.record(action="test.event")
    celery_worker.start()

    verify_audit_chain.delay()

    event = wait_for(
        lambda: AuditEvent.objects.filter(action="audit.verified").first(),
        what="the worker's audit.verified event",
    )
    assert event.payload["events"] == 1
    assert audit.verify_chain().ok
