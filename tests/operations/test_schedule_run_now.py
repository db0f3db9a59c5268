"""The schedules page's "Run now": admins only, audited, and the task really runs (in-process
here: CELERY_TASK_ALWAYS_EAGER)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from labeling import pool
from labeling.models import Assignment
from operations.schedules import RUN_NOW
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from tests.conftest import client_for
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db(transaction=True)

INTRUDERS = ["annotator", "senior", "plant", "outsider"]


def lease_expiry() -> PeriodicTask:
    # A transactional test's flush empties the migrations' schedules: made again if missing.
    crontab = CrontabSchedule.objects.get_or_create(minute="*", hour="*", day_of_week="*")[0]
    return PeriodicTask.objects.get_or_create(
        task="labeling.expire_leases", defaults={"name": "expire leases", "crontab": crontab}
    )[0]


def an_expired_lease() -> Assignment:
    pool_railcar(raters=1)
    (rater,) = annotators(1, prefix="late-")
    assignment = pool.next_assignment(annotator=rater)
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=1)
    )
    return assignment


@pytest.mark.parametrize("who", ["anonymous", *INTRUDERS])
def test_nobody_but_admins_runs_a_schedule_now(who, request):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    task = lease_expiry()

    response = client_for(user).post(reverse("operations:schedule-run", args=[task.pk]))

    if user is None:
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    else:
        assert response.status_code == 403
    assert not AuditEvent.objects.filter(action=RUN_NOW).exists()


def test_run_now_is_post_only(admin_user):
    task = lease_expiry()
    response = client_for(admin_user).get(reverse("operations:schedule-run", args=[task.pk]))
    assert response.status_code == 405
    assert not AuditEvent.objects.filter(action=RUN_NOW).exists()


def test_an_admin_runs_a_schedule_now_and_the_page_says_who_and_when(admin_user):
    assignment = an_expired_lease()
    task = lease_expiry()
    client = client_for(admin_user)

    response = client.post(reverse("operations:schedule-run", args=[task.pk]), follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert f"{task.name}: sent to run now" in page
    assert f"by {admin_user.username}" in page
    event = AuditEvent.objects.get(action=RUN_NOW)
    assert event.actor == admin_user and event.payload["task"] == "labeling.expire_leases"
    assert event.object_id == str(task.pk)
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.EXPIRED  # the task ran
    assert verify_chain().ok


def test_an_unknown_schedule_or_task_is_refused_and_nothing_is_recorded(admin_user):
    crontab = CrontabSchedule.objects.create(minute="0", hour="1", day_of_week="*")
    stray = PeriodicTask.objects.create(name="stray", task="nobody.knows", crontab=crontab)
    client = client_for(admin_user)

    for pk in (stray.pk, 999_999):
        response = client.post(reverse("operations:schedule-run", args=[pk]), follow=True)
        assert response.status_code == 200
        assert b"not a task this application knows" in response.content or b"does not exist" in (
            response.content
        )
    assert not AuditEvent.objects.filter(action=RUN_NOW).exists()
