"""A training run's heartbeat (mlloop/runs.py): a run whose worker died is taken over within
SCRAPANNOT["TRAINING_STALE_S"], a live one never, and a worker that wakes after losing its run
stores nothing."""

import time
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from mlloop import registry, runs
from mlloop.models import ModelVersion
from mlloop.reconcile import requeue_lost_runs
from scrapannot.models import AuditEvent
from tests.mlloop.model_factories import TINY, frozen_dataset, splits

Status = ModelVersion.Status


def queued_run() -> ModelVersion:
    dataset = frozen_dataset(splits(6, 2, 0))
    return registry.create_run(dataset_version=dataset, actor=None, overrides=TINY, enqueue=False)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


@pytest.mark.django_db
def test_a_long_run_that_beats_is_left_alone_and_a_silent_one_is_taken_over(
    django_capture_on_commit_callbacks, settings
):
    run = queued_run()
    now = timezone.now()
    five_hours_ago = now - timedelta(hours=5)
    ModelVersion.objects.filter(pk=run.pk).update(
        status=Status.RUNNING,
        started_at=five_hours_ago,
        heartbeat_at=now - timedelta(minutes=1),
        log="epoch 7/40",
    )

    assert requeue_lost_runs(now=now) == 0
    assert runs.train_model_version(run.pk).log == "epoch 7/40"  # a redelivery: not its run

    silent = now - timedelta(seconds=settings.SCRAPANNOT["TRAINING_STALE_S"] + 60)
    ModelVersion.objects.filter(pk=run.pk).update(heartbeat_at=silent)
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_lost_runs(now=now) == 1

    run.refresh_from_db()
    assert run.status == Status.SUCCEEDED, run.log
    assert run.started_at > five_hours_ago and run.heartbeat_at >= run.started_at
    assert actions().count("model.trained") == 1


@pytest.mark.django_db
def test_a_worker_that_lost_its_run_to_a_takeover_stores_nothing(
    django_capture_on_commit_callbacks, settings
):
    run = queued_run()
    first = runs._Run(run, runs._claim(run.pk))
    stale = timezone.now() - timedelta(seconds=settings.SCRAPANNOT["TRAINING_STALE_S"] + 1)
    ModelVersion.objects.filter(pk=run.pk).update(heartbeat_at=stale)  # the first worker stalls
    second = runs._Run(run, runs._claim(run.pk))  # a redelivered message takes the run over
    assert second.claimed_at != first.claimed_at
    _, stored_before = (
        default_storage.listdir("models")
        if default_storage.exists("models")
        else (
            [],
            [],
        )
    )

    trained, metrics = runs._train(run, first)  # the first worker wakes and finishes
    with django_capture_on_commit_callbacks(execute=True):
        assert runs._succeed(run, first, trained, metrics) is False
    runs._fail(run, first, "late failure")

    row = ModelVersion.objects.get(pk=run.pk)
    assert (row.status, row.started_at, row.artifact.name) == (
        Status.RUNNING,
        second.claimed_at,
        "",
    )
    assert row.log == ""  # the first worker's lines never reached the live claim's log
    assert "model.trained" not in actions() and "model.failed" not in actions()
    assert set(default_storage.listdir("models")[1]) == set(stored_before)  # its file deleted

    assert runs._succeed(run, second, trained, metrics) is True
    assert ModelVersion.objects.get(pk=run.pk).status == Status.SUCCEEDED
    assert actions().count("model.trained") == 1


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_stamps_the_row_on_its_own_connection_until_the_run_is_taken_over(
    monkeypatch,
):
    monkeypatch.setattr(runs, "HEARTBEAT_S", 0.05)
    run = queued_run()
    claimed = runs._claim(run.pk)
    long_ago = claimed - timedelta(hours=1)
    ModelVersion.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)
    heartbeat = runs._Heartbeat(runs._Run(run, claimed))
    heartbeat.start()
    try:
        deadline = time.monotonic() + 10
        while ModelVersion.objects.get(pk=run.pk).heartbeat_at == long_ago:
            assert time.monotonic() < deadline, "no heartbeat in 10 s"
            time.sleep(0.05)
        # Another claim took the run: this thread's beats no longer touch it.
        ModelVersion.objects.filter(pk=run.pk).update(
            started_at=timezone.now(), heartbeat_at=long_ago
        )
        time.sleep(0.5)
        assert ModelVersion.objects.get(pk=run.pk).heartbeat_at == long_ago
    finally:
        heartbeat.stop()
    assert not heartbeat.is_alive()
