"""The embedded mode's local worker (scrapannot.background): a task sent through `enqueue` runs in
a thread of its queue and the sender goes on at once; without it, tasks run as before."""

import threading

import pytest

from labeling.tasks import expire_leases
from mlloop.tasks import score_railcars
from scrapannot import background
from scrapannot.enqueue import enqueue, send
from scrapannot.models import AuditEvent
from scrapannot.tasks import verify_audit_chain

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def local_worker():
    background.start()
    yield
    background.stop(wait=True)


def test_a_task_sent_through_enqueue_is_done_by_the_local_worker(local_worker):
    task_id = send(verify_audit_chain)
    background.stop(wait=True)  # let it finish

    assert task_id
    event = AuditEvent.objects.get(action="audit.verified")
    assert event.payload["broken_seq"] is None


def test_each_queue_has_its_own_thread(local_worker):
    names: dict[str, str] = {}
    for task in (verify_audit_chain, score_railcars, expire_leases):
        _, future = background.submit(task)
        future.result(timeout=60)
        names[task.name] = background._executor(background._queue(task))._thread_name_prefix
    assert names == {
        "scrapannot.verify_audit_chain": "celery",
        "mlloop.score_railcars": "training",
        "labeling.expire_leases": "celery",
    }
    assert threading.current_thread().name == "MainThread"


def test_a_failing_task_is_logged_and_the_worker_goes_on(local_worker, caplog):
    _, future = background.submit(score_railcars, model_version_id=987654321)
    assert future.result(timeout=60) is not None  # the exception, not raised here
    assert "background task mlloop.score_railcars" in caplog.text
    assert enqueue(verify_audit_chain)


def test_without_the_local_worker_a_task_runs_as_before():
    assert not background.running()
    assert background.submit(verify_audit_chain) is None
    assert enqueue(verify_audit_chain)  # eager in tests: done when enqueue returns
    assert AuditEvent.objects.filter(action="audit.verified").count() == 1
