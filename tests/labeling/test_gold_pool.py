"""Gold railcars in the pool: handed out at the gold share of each annotator's leases, outside
their slots, to any number of annotators once each, and never closed for aggregation."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from labeling import annotation, pool
from labeling.models import Assignment, Railcar
from scrapannot.policy import set_policy
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.gold_factories import make_gold

# Each test runs on both paths: the PL/pgSQL functions and the ORM (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pool_path")]


def _share(value: float) -> None:
    set_policy(key="pool.gold_share", value=value, actor=None)


def _rate(assignment: Assignment, pct: str = "10.0") -> None:
    annotation.submit_rating(
        uid=assignment.uid, annotator=assignment.annotator,
        contamination_pct=Decimal(pct), grade="3A", seconds_spent=30,
    )  # fmt: skip


def test_a_gold_railcar_never_goes_out_by_priority_or_random_pick():
    _share(0.0)
    set_policy(key="pool.random_pick_share", value=1.0, actor=None)
    make_gold(pool_railcar(priority=9.0))
    (a,) = annotators(1)

    assert pool.next_assignment(annotator=a) is None


def test_a_gold_pick_takes_a_gold_railcar_before_any_priority():
    _share(0.5)
    pool_railcar(priority=9.0, raters=40)
    gold = make_gold(pool_railcar(raters=3))
    # At the maximum share a draw is a coin toss: over 40 annotators both kinds turn up.
    people = annotators(40)
    got = [pool.next_assignment(annotator=p) for p in people]
    gold_leases = [g for g in got if g.railcar_id == gold.railcar_id]

    assert 5 <= len(gold_leases) <= 35
    assert all(g.gold_pick and not g.random_pick for g in gold_leases)
    assert not any(g.gold_pick for g in got if g.railcar_id != gold.railcar_id)


def _gold_lease(person, gold) -> Assignment:
    """Lease until a gold pick comes (ordinary leases are released: every annotator has an
    ordinary railcar of their own waiting)."""
    for _ in range(200):
        lease = pool.next_assignment(annotator=person)
        if lease.railcar_id == gold.railcar_id:
            return lease
        pool.release_assignment(uid=lease.uid, annotator=person, reason="other")
    raise AssertionError("no gold pick in 200 leases at share 0.5")


def test_any_number_of_annotators_rate_a_gold_railcar_once_each_outside_its_slots():
    _share(0.5)
    gold = make_gold(pool_railcar(raters=3))
    people = annotators(6)
    for _ in range(30):
        pool_railcar(raters=6)
    leases = []
    for person in people:
        leases.append(_gold_lease(person, gold))
        _rate(leases[-1])

    railcar = Railcar.objects.get(pk=gold.railcar_id)
    assert railcar.status == Railcar.Status.IN_POOL  # never closed: no consensus is coming
    assert railcar.open_slots == 3  # the gold leases took none of its slots
    assert sorted(a.slot for a in leases) == [4, 5, 6, 7, 8, 9]
    assert railcar.ratings.count() == 6
    later = [pool.next_assignment(annotator=people[0]) for _ in range(1)]
    assert later[0].railcar_id != gold.railcar_id  # once each


def test_an_annotator_with_no_ordinary_work_left_gets_no_gold_pick_either():
    _share(0.5)
    make_gold(pool_railcar())
    (a,) = annotators(1)

    assert all(pool.next_assignment(annotator=a) is None for _ in range(20))


def test_an_abandoned_or_released_gold_lease_gives_back_no_slot():
    _share(0.5)
    gold = make_gold(pool_railcar(raters=3))
    a, b = annotators(2)
    for _ in range(30):
        pool_railcar(raters=2)
    held = [_gold_lease(p, gold) for p in (a, b)]

    pool.release_assignment(uid=held[0].uid, annotator=a, reason="other")
    Assignment.objects.filter(pk=held[1].pk).update(lease_expires_at=timezone.now() - timedelta(1))
    assert pool.expire_leases() == 1

    assert Railcar.objects.get(pk=gold.railcar_id).open_slots == 3


def test_a_retired_gold_railcar_is_handed_out_no_more():
    from labeling import gold as gold_truth

    _share(0.5)
    gold = make_gold(pool_railcar())
    assert gold_truth.retire_gold(railcar_id=gold.railcar_id, actor=None)
    (a,) = annotators(1)
    for _ in range(20):
        pool_railcar()

    for _ in range(20):
        lease = pool.next_assignment(annotator=a)
        assert lease.railcar_id != gold.railcar_id
        pool.release_assignment(uid=lease.uid, annotator=a, reason="other")
