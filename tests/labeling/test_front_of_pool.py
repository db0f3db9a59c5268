"""Putting a railcar at the front of the pool: ahead of any learning-loop priority, only while
its raters are still to come, audited once."""

import pytest

from labeling import pool
from labeling.front_of_pool import FRONT_PRIORITY, put_at_front
from labeling.models import Railcar
from labeling.policies import RANDOM_PICK_SHARE
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.labeling.factories import annotators, pool_railcar

# Each test runs on both paths: the PL/pgSQL functions and the ORM (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pool_path")]


def test_a_railcar_put_at_the_front_is_handed_out_before_the_most_uncertain_one():
    set_policy(key=RANDOM_PICK_SHARE, value=0.0, actor=None)
    uncertain = pool_railcar(priority=1e5)
    escalated = pool_railcar(priority=0.0)

    assert put_at_front(railcar_id=escalated.pk, reason="operator escalation")

    first = pool.next_assignment(annotator=annotators(1)[0])
    assert first.railcar_id == escalated.pk != uncertain.pk


def test_putting_it_there_twice_records_one_event():
    railcar = pool_railcar()

    put_at_front(railcar_id=railcar.pk, reason="first")
    put_at_front(railcar_id=railcar.pk, reason="again")

    events = AuditEvent.objects.filter(action="pool.put_at_front")
    assert events.count() == 1 and events.get().payload["reason"] == "first"


@pytest.mark.parametrize(
    "status", [Railcar.Status.RATED, Railcar.Status.IN_ADJUDICATION, Railcar.Status.LABELED]
)
def test_a_railcar_whose_ratings_are_in_stays_where_it_is(status):
    railcar = pool_railcar(priority=2.0)
    Railcar.objects.filter(pk=railcar.pk).update(status=status)

    assert not put_at_front(railcar_id=railcar.pk, reason="operator escalation")

    railcar.refresh_from_db()
    assert railcar.priority == 2.0
    assert not AuditEvent.objects.filter(action="pool.put_at_front").exists()


def test_a_railcar_still_being_checked_enters_the_pool_at_the_front():
    railcar = pool_railcar()
    Railcar.objects.filter(pk=railcar.pk).update(status=Railcar.Status.CHECKING)

    assert put_at_front(railcar_id=railcar.pk, reason="operator escalation")

    railcar.refresh_from_db()
    assert railcar.priority == FRONT_PRIORITY
