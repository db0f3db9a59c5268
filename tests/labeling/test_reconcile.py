"""The reconciler: a railcar whose state waits for a task that was lost gets it enqueued again,
once per period, and a railcar still within its period is left alone."""

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Railcar
from labeling.reconcile import reconcile_railcars
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rated_railcar
from tests.labeling.unloadings import named_layers_unloading

pytestmark = pytest.mark.django_db

Status = Railcar.Status
LATER = timedelta(minutes=30)


def test_an_ingested_railcar_whose_check_was_lost_is_checked_after_the_period(
    plant_client, django_capture_on_commit_callbacks
):
    named_layers_unloading().post(plant_client)  # its on-commit enqueue never ran: lost
    assert Railcar.objects.get().status == Status.INGESTED

    with django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_railcars(now=timezone.now() + LATER)

    assert counts == {Status.INGESTED: 1}
    assert Railcar.objects.get().status in (Status.IN_POOL, Status.NEEDS_ATTENTION)
    assert AuditEvent.objects.filter(action="quality.checked").count() == 1


def test_a_railcar_within_its_period_is_left_alone(plant_client):
    named_layers_unloading().post(plant_client)

    assert reconcile_railcars() == {}
    assert Railcar.objects.get().nudged_at is None


def test_a_railcar_is_nudged_once_per_period(plant_client):
    named_layers_unloading().post(plant_client)
    now = timezone.now() + LATER

    assert reconcile_railcars(now=now) == {Status.INGESTED: 1}
    assert reconcile_railcars(now=now + timedelta(seconds=30)) == {}
    assert reconcile_railcars(now=now + LATER) == {Status.INGESTED: 1}


def test_a_rated_railcar_whose_aggregation_was_lost_is_aggregated(
    django_capture_on_commit_callbacks,
):
    railcar, _ = rated_railcar(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"])
    assert railcar.status == Status.RATED  # the aggregation's enqueue never ran

    with django_capture_on_commit_callbacks(execute=True):
        counts = reconcile_railcars(now=timezone.now() + LATER)

    assert counts == {Status.RATED: 1}
    railcar.refresh_from_db()
    assert railcar.status == Status.LABELED


def test_concluded_railcars_owe_nothing(plant_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        named_layers_unloading().post(plant_client)

    assert reconcile_railcars(now=timezone.now() + LATER) == {}
