from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling import annotation, pool
from labeling.models import Assignment, Railcar, Rating
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators, pool_railcar

# Each test runs on both paths: the PL/pgSQL functions and the ORM (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pool_path")]


def test_it_hands_out_the_highest_priority_then_the_oldest_railcar():
    old = pool_railcar()
    newer = pool_railcar(created_offset_s=60)
    urgent = pool_railcar(priority=5.0, created_offset_s=120)
    a, b, c = annotators(3)

    assert pool.next_assignment(annotator=a).railcar == urgent
    assert pool.next_assignment(annotator=b).railcar == urgent
    assert pool.next_assignment(annotator=c).railcar == urgent
    (d,) = annotators(1, prefix="late")
    assert pool.next_assignment(annotator=d).railcar == old
    assert old.created_at < newer.created_at


def test_asking_again_returns_the_assignment_already_held():
    pool_railcar()
    pool_railcar()
    (a,) = annotators(1)

    first = pool.next_assignment(annotator=a)

    assert pool.next_assignment(annotator=a) == first
    assert Assignment.objects.count() == 1


def test_a_lease_lasts_the_lease_policy_read_on_that_very_lease():
    pool_railcar()
    pool_railcar()
    a, b = annotators(2)

    default = pool.next_assignment(annotator=a)
    set_policy(key="pool.lease_minutes", value=45, actor=None)
    changed = pool.next_assignment(annotator=b)

    assert default.lease_expires_at - default.leased_at == timedelta(minutes=30)
    assert changed.lease_expires_at - changed.leased_at == timedelta(minutes=45)


def test_each_railcar_gets_n_distinct_annotators_under_different_pseudonyms():
    railcar = pool_railcar(raters=3)
    people = annotators(4)

    got = [pool.next_assignment(annotator=p) for p in people]

    assert [g.railcar if g else None for g in got] == [railcar, railcar, railcar, None]
    assert len({g.pseudonym for g in got[:3]}) == 3
    assert sorted(g.slot for g in got[:3]) == [1, 2, 3]
    railcar.refresh_from_db()
    assert railcar.open_slots == 0


def test_it_never_gives_one_railcar_twice_to_one_annotator():
    railcar = pool_railcar(raters=3)
    (a,) = annotators(1)
    first = pool.next_assignment(annotator=a)
    pool.release_assignment(uid=first.uid, annotator=a, reason="cannot judge")

    assert pool.next_assignment(annotator=a) is None
    railcar.refresh_from_db()
    assert railcar.open_slots == 3


def test_a_released_slot_goes_to_someone_else():
    railcar = pool_railcar(raters=1)
    a, b = annotators(2)
    held = pool.next_assignment(annotator=a)
    assert pool.next_assignment(annotator=b) is None

    pool.release_assignment(uid=held.uid, annotator=a, reason="wrong camera angle")

    assert pool.next_assignment(annotator=b).railcar == railcar
    assert AuditEvent.objects.filter(action="assignment.released").get().actor == a


def test_an_abandoned_lease_expires_and_its_slot_returns_to_the_pool():
    railcar = pool_railcar(raters=1)
    a, b = annotators(2)
    held = pool.next_assignment(annotator=a)
    Assignment.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    taken = pool.next_assignment(annotator=b)

    assert taken.railcar == railcar
    held.refresh_from_db()
    assert held.status == Assignment.Status.EXPIRED
    with pytest.raises(pool.LeaseLost):
        annotation.submit_rating(
            uid=held.uid, annotator=a, contamination_pct=1, grade="3A", seconds_spent=5
        )


def test_a_late_submission_is_refused_even_while_nobody_reclaimed_the_slot():
    pool_railcar(raters=1)
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    Assignment.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    with pytest.raises(pool.LeaseExpired):
        annotation.submit_rating(
            uid=held.uid, annotator=a, contamination_pct=2, grade="3A", seconds_spent=5
        )

    assert not Rating.objects.exists()


def test_railcars_outside_the_pool_are_never_handed_out():
    for status in ("ingested", "checking", "needs_attention", "rated"):
        Railcar.objects.filter(pk=pool_railcar().pk).update(status=status)
    (a,) = annotators(1)

    assert pool.next_assignment(annotator=a) is None


def test_the_database_refuses_a_second_holder_of_a_slot_or_a_second_lease_for_one_person():
    railcar = pool_railcar(raters=3)
    a, b = annotators(2)
    held = pool.next_assignment(annotator=a)
    now = timezone.now()

    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            railcar=railcar, annotator=b, slot=held.slot, pseudonym="x-y-1",
            leased_at=now, lease_expires_at=now,
        )  # fmt: skip
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            railcar=railcar, annotator=a, slot=2, pseudonym="x-y-2",
            leased_at=now, lease_expires_at=now,
        )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_from_many_annotators_never_over_assign(on_postgresql):
    railcars = [pool_railcar(raters=3, with_files=False) for _ in range(5)]
    people = iter(annotators(24))

    got = run_at_once(lambda: pool.next_assignment(annotator=next(people)), threads=24)

    held = [g for g in got if g is not None]
    assert len(held) == 15 and got.count(None) == 9
    for railcar in railcars:
        assignments = Assignment.objects.filter(railcar=railcar)
        assert assignments.count() == 3
        assert assignments.values("annotator").distinct().count() == 3
        assert sorted(assignments.values_list("slot", flat=True)) == [1, 2, 3]
        railcar.refresh_from_db()
        assert railcar.open_slots == 0


@pytest.mark.django_db(transaction=True)
def test_one_annotator_asking_many_times_at_once_gets_one_assignment(on_postgresql):
    for _ in range(4):
        pool_railcar(raters=3, with_files=False)
    (a,) = annotators(1)

    got = run_at_once(lambda: pool.next_assignment(annotator=a), threads=8)

    assert Assignment.objects.filter(annotator=a).count() == 1
    assert {g.pk for g in got} == {Assignment.objects.get().pk}


def test_a_scheduled_task_returns_abandoned_leases_every_minute():
    from django_celery_beat.models import PeriodicTask

    from labeling.tasks import expire_leases

    railcar = pool_railcar(raters=1)
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    Assignment.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert expire_leases.apply().get() == 1

    railcar.refresh_from_db()
    assert railcar.open_slots == 1
    task = PeriodicTask.objects.get(task="labeling.expire_leases")
    assert (task.interval.every, task.interval.period) == (1, "minutes")


def _lease_and_release(annotator) -> Assignment:
    assignment = pool.next_assignment(annotator=annotator)
    pool.release_assignment(uid=assignment.uid, annotator=annotator, reason="next")
    return assignment


def test_the_random_pick_share_is_the_share_of_leases_that_are_random_picks():
    railcars = [
        pool_railcar(layers=1, frames_per_layer=1, with_files=False, priority=float(p))
        for p in range(120)
    ]
    # The tie-break is a uniform draw at creation; fix it here (a scramble of the priorities) so
    # that which railcars the random picks reach does not depend on the draw.
    for railcar in railcars:
        Railcar.objects.filter(pk=railcar.pk).update(tiebreak=(railcar.priority * 37) % 120)
    people = annotators(2)

    leases = [_lease_and_release(person) for person in people for _ in range(100)]

    random_picks = [a for a in leases if a.random_pick]
    # The default policy (0.15): exactly floor(100 * 0.15) of each annotator's 100 leases.
    assert len(random_picks) == 2 * 15
    assert Assignment.objects.filter(random_pick=True).count() == 30
    # A priority lease takes the highest priority the annotator has not held yet; a random pick
    # is drawn from the whole pool, so it reaches railcars the priority order never gets to.
    by_priority = [a.railcar.priority for a in leases if not a.random_pick]
    assert by_priority[:85] == sorted(by_priority[:85], reverse=True)
    assert min(a.railcar.priority for a in random_picks) < 120 - 100
    assert len(railcars) == 120


def test_a_share_of_zero_never_draws_at_random_and_one_always_does():
    assert not any(pool.is_random_pick(leases_before=n, share=0.0) for n in range(1000))
    assert all(pool.is_random_pick(leases_before=n, share=1.0) for n in range(1000))
    assert sum(pool.is_random_pick(leases_before=n, share=0.15) for n in range(1000)) == 150


def test_random_picks_follow_the_tiebreak_draw_not_the_priority():
    low = pool_railcar(layers=1, frames_per_layer=1, with_files=False, priority=0.0)
    pool_railcar(layers=1, frames_per_layer=1, with_files=False, priority=9.0)
    Railcar.objects.filter(pk=low.pk).update(tiebreak=-1.0)
    (a,) = annotators(1)
    set_policy(key="pool.random_pick_share", value=1.0, actor=None)

    lease = pool.next_assignment(annotator=a)

    assert lease.random_pick and lease.railcar == low
    event = AuditEvent.objects.get(action="assignment.leased")
    assert event.payload["random_pick"] is True
