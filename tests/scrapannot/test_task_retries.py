"""Every task of ours retries what a restart of PostgreSQL fixes, with backoff and jitter; the
reconciler is scheduled in beat."""

import pytest

from scrapannot.celery import DATABASE_TRANSIENT
from scrapannot.celery import app as celery_app

OURS = ("scrapannot.", "labeling.", "adjudication.", "mlloop.")


def our_tasks() -> list:
    celery_app.loader.import_default_modules()
    return [t for name, t in celery_app.tasks.items() if name.startswith(OURS)]


def test_every_task_retries_database_errors_with_backoff_and_jitter():
    tasks = our_tasks()

    assert len(tasks) >= 10
    for task in tasks:
        assert hasattr(task, "_orig_run"), f"{task.name} has no autoretry wrapper"
        for error in DATABASE_TRANSIENT:
            assert issubclass(error, tuple(task.autoretry_for)), f"{task.name}: {error}"
        assert task.retry_backoff and task.retry_jitter, task.name
        assert task.max_retries >= 5, task.name


@pytest.mark.django_db
def test_the_reconciler_runs_every_minute_in_celery_beat():
    from django_celery_beat.models import PeriodicTask

    task = PeriodicTask.objects.get(task="labeling.reconcile_railcars")
    assert task.enabled and (task.interval.every, task.interval.period) == (1, "minutes")
