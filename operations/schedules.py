"""Editing the product's Celery beat schedules (django-celery-beat rows), audited.

Every app's periodic tasks are edited here, on one page (`operations.schedule_views`):
retraining and scoring with the nightly audit check, lease expiry and rater calibration.
"""

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from scrapannot import audit
from scrapannot.celery import app
from scrapannot.enqueue import enqueue
from scrapannot.models import AuditEvent


def _schedule_state(task: PeriodicTask) -> dict[str, Any]:
    state: dict[str, Any] = {"enabled": task.enabled}
    if task.crontab_id:
        c = task.crontab
        state |= {"minute": c.minute, "hour": c.hour, "day_of_week": c.day_of_week}
    if task.interval_id:
        state |= {"every": task.interval.every, "period": task.interval.period}
    return state


class StaleSchedule(ValidationError):
    """The task changed after the admin's form was drawn."""


def edit_schedule(*, data: dict[str, Any], actor: Any) -> PeriodicTask:
    """Apply one admin's edit of one periodic task and audit it.

    The task row is locked first, and beat's change marker (one row that `save` updates) is
    written before the audit event, so every row lock is held before the audit chain's lock. A
    form drawn from an older state of the task is refused, so two admins editing at once cannot
    silently overwrite each other. Schedules are shared between tasks, so an edit points the task
    at a matching schedule row (made if missing) instead of changing the shared one."""
    with transaction.atomic():
        task = (
            PeriodicTask.objects.select_for_update(of=("self",))
            .select_related("crontab", "interval")
            .filter(pk=data["task"])
            .first()
        )
        if task is None:
            raise ValidationError("That schedule does not exist.")
        if task.date_changed.isoformat() != data["seen"]:
            raise StaleSchedule(f"{task.name} was changed meanwhile; reload the page and retry.")
        before = _schedule_state(task)
        task.enabled = data["enabled"]
        if task.crontab_id:
            task.crontab = _crontab_like(task.crontab, data)
        elif task.interval_id:
            if not data.get("every") or not data.get("period"):
                raise ValidationError("An interval needs a number of periods and a period.")
            fields = {"every": data["every"], "period": data["period"]}
            task.interval = IntervalSchedule.objects.filter(
                **fields
            ).first() or IntervalSchedule.objects.create(**fields)
        after = _schedule_state(task)
        if after == before:
            return task
        task.save()
        audit.record(
            action="schedule.changed",
            actor=actor,
            obj=task,
            payload={"name": task.name, "task": task.task, "before": before, "after": after},
        )
    return task


def _crontab_like(old: CrontabSchedule, data: dict[str, Any]) -> CrontabSchedule:
    missing = [f for f in ("minute", "hour", "day_of_week") if not data.get(f)]
    if missing:
        raise ValidationError(f"A crontab needs {', '.join(missing)} (use * for every).")
    fields = {
        "minute": data["minute"],
        "hour": data["hour"],
        "day_of_week": data["day_of_week"],
        "day_of_month": old.day_of_month,
        "month_of_year": old.month_of_year,
        "timezone": old.timezone,
    }
    return CrontabSchedule.objects.filter(**fields).first() or CrontabSchedule.objects.create(
        **fields
    )


RUN_NOW = "schedule.run_now"


def run_now(*, task_id: int, actor: Any, actor_label: str | None = None) -> PeriodicTask:
    """Send one scheduled task now, with the arguments its schedule stores, as beat would send
    it; audited, so the schedules page can say who ran what when. The task goes to a worker
    (or the embedded mode's local worker) once the audit event commits."""
    task = PeriodicTask.objects.filter(pk=task_id).first()
    if task is None:
        raise ValidationError("That schedule does not exist.")
    celery_task = app.tasks.get(task.task)
    if celery_task is None:
        raise ValidationError(f"{task.task} is not a task this application knows.")
    try:
        args = json.loads(task.args or "[]")
        kwargs = json.loads(task.kwargs or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{task.name} stores arguments that are not JSON: {exc}") from exc
    with transaction.atomic():
        audit.record(
            action=RUN_NOW,
            actor=actor,
            actor_label=actor_label,
            obj=task,
            payload={"name": task.name, "task": task.task, "args": args, "kwargs": kwargs},
        )
        transaction.on_commit(lambda: enqueue(celery_task, *args, **kwargs))
    return task


def last_runs_now(tasks: list[PeriodicTask]) -> dict[int, AuditEvent]:
    """Each task's latest "run now" event, by task id."""
    events = AuditEvent.objects.filter(
        action=RUN_NOW,
        object_type=PeriodicTask._meta.label_lower,
        object_id__in=[str(t.pk) for t in tasks],
    ).order_by("id")
    return {int(e.object_id): e for e in events}
