"""The schedules page: every app's Celery beat schedules, edited by admins only and audited.
(Moved from tests/mlloop/test_model_views.py with the page.)"""

import re

import pytest
from django.db import connection
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from tests.concurrency import run_at_once
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

INTRUDERS = ["annotator", "senior", "plant", "outsider"]


def periodic(name: str = "retrain nightly", task: str = "mlloop.retrain") -> PeriodicTask:
    crontab = CrontabSchedule.objects.create(minute="30", hour="2", day_of_week="*")
    return PeriodicTask.objects.create(name=name, task=task, crontab=crontab)


def schedule_post(task: PeriodicTask, /, **changes: object) -> dict:
    data = {
        "task": task.pk,
        "seen": task.date_changed.isoformat(),
        "enabled": "on" if task.enabled else "",
    }
    if task.crontab_id:
        data |= {
            "minute": task.crontab.minute,
            "hour": task.crontab.hour,
            "day_of_week": task.crontab.day_of_week,
        }
    if task.interval_id:
        data |= {"every": task.interval.every, "period": task.interval.period}
    data |= changes
    return {k: v for k, v in data.items() if v != ""}


# --- who may ---------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", *INTRUDERS])
def test_nobody_but_admins_reaches_the_schedules_page(who, request):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    task = periodic()
    client = client_for(user)

    responses = [
        client.get(reverse("operations:schedules")),
        client.post(reverse("operations:schedules"), schedule_post(task, enabled="")),
    ]

    for response in responses:
        if user is None:
            assert response.status_code == 302 and "/accounts/login/" in response["Location"]
        else:
            assert response.status_code == 403
        assert b"mae" not in response.content.lower()
    task.refresh_from_db()
    assert task.enabled
    assert not AuditEvent.objects.exists()


# --- schedules -------------------------------------------------------------------------------


def test_the_schedules_page_lists_the_learning_loop_first_and_the_product_jobs(admin_user):
    periodic("zz retrain", "mlloop.retrain")
    response = client_for(admin_user).get(reverse("operations:schedules"))

    assert response.status_code == 200
    tasks = re.findall(r'<tr data-task="([^"]+)"', response.content.decode())
    # The migrations' schedules are there too (audit chain, lease expiry).
    assert tasks[0].startswith("mlloop.")
    assert "scrapannot.verify_audit_chain" in tasks and "labeling.expire_leases" in tasks


def test_an_admin_changes_a_crontab_without_touching_the_shared_schedule(admin_user):
    task = periodic()
    other = PeriodicTask.objects.create(name="other", task="mlloop.score", crontab=task.crontab)

    response = client_for(admin_user).post(
        reverse("operations:schedules"),
        schedule_post(task, minute="*/15", hour="1-5", day_of_week="mon-fri"),
    )

    assert response.status_code == 302
    task.refresh_from_db()
    other.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == (
        "*/15",
        "1-5",
        "mon-fri",
    )
    assert (other.crontab.minute, other.crontab.hour) == ("30", "2")
    event = AuditEvent.objects.get(action="schedule.changed")
    assert event.actor == admin_user and event.object_id == str(task.pk)
    assert event.payload["before"]["minute"] == "30" and event.payload["after"]["minute"] == "*/15"


def test_an_admin_disables_an_interval_schedule_and_changes_its_period(admin_user):
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    task = PeriodicTask.objects.create(name="score", task="mlloop.score", interval=every_minute)

    response = client_for(admin_user).post(
        reverse("operations:schedules"), schedule_post(task, enabled="", every=6, period="hours")
    )

    assert response.status_code == 302
    task.refresh_from_db()
    assert not task.enabled and (task.interval.every, task.interval.period) == (6, "hours")
    assert AuditEvent.objects.get(action="schedule.changed").payload["after"] == {
        "enabled": False,
        "every": 6,
        "period": "hours",
    }


def test_saving_an_unchanged_schedule_records_nothing(admin_user):
    task = periodic()

    response = client_for(admin_user).post(reverse("operations:schedules"), schedule_post(task))

    assert response.status_code == 302
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"minute": "60"},
        {"minute": "*/0"},
        {"minute": "0 1"},  # would shift the other crontab fields
        {"hour": "24"},
        {"hour": "-1"},
        {"hour": "1-"},
        {"day_of_week": "8"},
        {"day_of_week": "someday"},
        {"minute": "x" * 61},
        {"minute": "5; DROP TABLE django_celery_beat_periodictask"},
        {"minute": "<script>alert(1)</script>"},
        {"minute": ""},
        {"task": "999999"},
        {"task": "abc"},
        {"seen": ""},
    ],
)
def test_bad_crontab_values_are_refused_and_nothing_changes(admin_user, changes):
    task = periodic()

    response = client_for(admin_user).post(
        reverse("operations:schedules"), schedule_post(task, **changes)
    )

    assert response.status_code == 400
    assert b"<script>alert(1)" not in response.content
    assert b'class="error"' in response.content
    task.refresh_from_db()
    assert (task.crontab.minute, task.crontab.hour, task.crontab.day_of_week) == ("30", "2", "*")
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "changes",
    [{"every": "0"}, {"every": "-3"}, {"every": "1e9"}, {"period": "fortnights"}, {"every": ""}],
)
def test_bad_intervals_are_refused(admin_user, changes):
    every_minute, _ = IntervalSchedule.objects.get_or_create(every=1, period="minutes")
    task = PeriodicTask.objects.create(name="score", task="mlloop.score", interval=every_minute)

    response = client_for(admin_user).post(
        reverse("operations:schedules"), schedule_post(task, **changes)
    )

    assert response.status_code == 400
    task.refresh_from_db()
    assert task.interval == every_minute and not AuditEvent.objects.exists()


def test_a_form_drawn_before_someone_elses_change_is_refused(admin_user):
    task = periodic()
    stale = schedule_post(task, hour="4")
    client = client_for(admin_user)
    assert (
        client.post(reverse("operations:schedules"), schedule_post(task, enabled="")).status_code
        == 302
    )

    response = client.post(reverse("operations:schedules"), stale)

    assert response.status_code == 409
    assert b"changed meanwhile" in response.content
    task.refresh_from_db()
    assert task.crontab.hour == "2" and not task.enabled
    assert AuditEvent.objects.filter(action="schedule.changed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_of_one_schedule_let_exactly_one_win(admin_user):
    assert connection.vendor == "postgresql"
    task = periodic()
    # Six real changes: hour 2 is the task's own, and a form that changes nothing is answered
    # 302 without taking the edit (which let two "win" when it came first).
    forms = iter([schedule_post(task, hour=str(h)) for h in range(10, 16)])

    def edit() -> int:
        return client_for(admin_user).post(reverse("operations:schedules"), next(forms)).status_code

    statuses = run_at_once(edit, threads=6)

    assert sorted(statuses) == [302] + [409] * 5
    events = AuditEvent.objects.filter(action="schedule.changed")
    assert events.count() == 1
    task.refresh_from_db()
    assert task.crontab.hour == events.get().payload["after"]["hour"]
    assert verify_chain().ok


@pytest.mark.django_db(transaction=True)
def test_concurrent_edits_of_different_schedules_all_land_without_deadlock(admin_user):
    tasks = [periodic(f"job {i}", f"mlloop.job{i}") for i in range(5)]
    forms = iter([schedule_post(t, minute=str(10 + i)) for i, t in enumerate(tasks)])

    def edit() -> int:
        return client_for(admin_user).post(reverse("operations:schedules"), next(forms)).status_code

    statuses = run_at_once(edit, threads=5)

    assert statuses == [302] * 5
    assert sorted(
        PeriodicTask.objects.filter(pk__in=[t.pk for t in tasks]).values_list(
            "crontab__minute", flat=True
        )
    ) == [str(10 + i) for i in range(5)]
    assert AuditEvent.objects.filter(action="schedule.changed").count() == 5
    assert verify_chain().ok
