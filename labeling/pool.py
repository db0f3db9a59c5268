"""Routing railcars to annotators: leases on slots, safe under concurrency.

A railcar in the pool has `raters_needed` slots. `next_assignment` hands an annotator the
highest-priority railcar (then the oldest, then a random tie-break) that has an open slot and that
they never held, by locking that railcar's row with SKIP LOCKED so concurrent requests take
different railcars instead of queueing on one. A share of the leases (policy
pool.random_pick_share) is a random pick instead: the pool interleaves them into each annotator's
leases (the 7th, 14th, 20th, ... at 0.15) and takes the candidate with the lowest `tiebreak`, a
uniform draw made when the railcar was created. So exactly that share of what is handed out is an
unbiased sample of the pool, whatever the learning loop's priorities are (a priority-based share
was not: random priorities compete with uncertainties on another scale). The database has the
last word: one assignment per annotator and railcar, one holder per slot
(`labeling.annotation_models`).

Gold railcars (truth known, `labeling.gold_models`) never go out by priority or random pick. A
share of each annotator's leases (policy pool.gold_share) is a gold pick instead: a gold railcar
the annotator never held, taken outside its slots (any number of annotators may rate it once
each). Whether a lease is a gold pick is drawn at random per lease, so neither the order of an
annotator's leases nor anything served tells a gold railcar from another; when no gold railcar
is left for the annotator, the lease is an ordinary one, and when no ordinary railcar is left for
them there is no gold pick either (an empty pool that still hands out work would say "gold").
"""

import math
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, OperationalError, models, transaction
from django.db.models import Exists, F, Max, OuterRef, QuerySet
from django.utils import timezone

from labeling import sql_path
from labeling.models import Assignment, GoldRailcar, Railcar
from labeling.policies import GOLD_SHARE, LEASE_MINUTES, RANDOM_PICK_SHARE
from scrapannot import audit
from scrapannot.policy import policy_values

# Pseudonyms: two words and a number, unrelated to the railcar or to other assignments.
# Statuses of a railcar that went through the quality checks into the pool: a gold railcar in one
# of them has frames fit to be served.
GOLD_ROUTABLE = (
    Railcar.Status.IN_POOL,
    Railcar.Status.RATED,
    Railcar.Status.IN_ADJUDICATION,
    Railcar.Status.LABELED,
)
_RANDOM = secrets.SystemRandom()
DEADLOCK_DETECTED = "40P01"  # PostgreSQL's SQLSTATE
POOL_POLICIES = sql_path.PoolPolicies(
    lease_minutes=LEASE_MINUTES, random_share=RANDOM_PICK_SHARE, gold_share=GOLD_SHARE
)

_WORDS = [
    "amber", "basalt", "cedar", "delta", "ember", "fjord", "garnet", "harbor", "indigo",
    "juniper", "kestrel", "lagoon", "marble", "nickel", "onyx", "pewter", "quartz", "russet",
    "sable", "tundra", "umber", "vesper", "willow", "xenon", "yarrow", "zephyr",
]  # fmt: skip


class NotYourAssignment(Exception):
    """The assignment does not exist for this annotator (deliberately indistinguishable)."""


class LeaseLost(Exception):
    """The assignment is no longer active: released, expired and reclaimed, or submitted."""


class LeaseExpired(LeaseLost):
    """The lease's time is over, whether or not the minute's sweep has returned its slot yet.
    Nothing is saved on it after that, a rating included: the slot may already be promised to
    someone else, and one rule that holds at every instant is simpler than "late but lucky"."""


class ReleaseReason(models.TextChoices):
    """Why an annotator gives a railcar back: a fixed list, so that releases can be counted."""

    CANNOT_JUDGE = "cannot_judge", "I cannot judge it"
    FRAMES_UNUSABLE = "frames_unusable", "The frames are unusable"
    WRONG_RAILCAR = "wrong_railcar", "Wrong railcar or not a loaded railcar"
    OTHER = "other", "Other (say why in the note)"


def new_pseudonym() -> str:
    return f"{secrets.choice(_WORDS)}-{secrets.choice(_WORDS)}-{secrets.randbelow(9000) + 1000}"


def expire_leases(*, now: object = None) -> int:
    """Return the slots of abandoned leases to the pool; safe to run anywhere, any time."""
    now = now or timezone.now()
    expired = 0
    with transaction.atomic():
        stale = list(
            Assignment.objects.select_for_update(skip_locked=True)
            .filter(status=Assignment.Status.ACTIVE, lease_expires_at__lt=now)
            .only("pk", "railcar_id", "gold_pick")
        )
        for assignment in stale:
            Assignment.objects.filter(pk=assignment.pk).update(
                status=Assignment.Status.EXPIRED, finished_at=now
            )
            _give_back_slot(assignment)
            expired += 1
        if stale:
            audit.record(
                action="assignment.expired",
                payload={"assignments": [str(a.pk) for a in stale]},
            )
    return expired


def current_assignment(*, annotator: AbstractBaseUser) -> Assignment | None:
    return (
        Assignment.objects.filter(
            annotator=annotator,
            status=Assignment.Status.ACTIVE,
            lease_expires_at__gt=timezone.now(),
        )
        .order_by("leased_at")
        .first()
    )


def next_assignment(*, annotator: AbstractBaseUser) -> Assignment | None:
    """The annotator's active assignment if they hold one, else a new lease; None when the pool
    has nothing for them. On PostgreSQL the lookup, the pool policies and the lease are one
    function call (`labeling.sql_path`); the ORM path below does the same in several queries."""
    if sql_path.enabled():

        def take() -> Assignment | None:
            return _take_slot_in_one_call(annotator=annotator)

    else:
        held = current_assignment(annotator=annotator)
        if held is not None:
            return held
        # Both pool policies in one query.
        policies = policy_values("pool.")

        def take() -> Assignment | None:
            return _take_slot(
                annotator=annotator,
                lease=timedelta(minutes=int(policies[LEASE_MINUTES])),
                share=float(policies[RANDOM_PICK_SHARE]),
                gold_share=float(policies[GOLD_SHARE]),
            )

    expired_swept = False
    for _attempt in range(5):
        try:
            with transaction.atomic():
                assignment = take()
        except IntegrityError:
            # Lost a race the row locks cannot see (the same annotator asking twice at once, a
            # pseudonym drawn twice): a constraint refused it. Look again.
            assignment = None
        except OperationalError as exc:
            # PostgreSQL broke a lock cycle by rolling this lease back (nothing of it stored).
            # A lease that waited for a locked railcar keeps that railcar's lock even when the
            # railcar has filled meanwhile and the wait moves on to the next one, so two such
            # waits can hold what the other waits for. Look again.
            if getattr(exc.__cause__, "sqlstate", None) != DEADLOCK_DETECTED:
                raise
            assignment = None
        if assignment is not None:
            return assignment
        held = current_assignment(annotator=annotator)
        if held is not None:
            return held
        if not _candidates(annotator=annotator).exists():
            # Abandoned leases go back every minute (beat); when the pool looks empty, sweep
            # now rather than keep an annotator waiting for the schedule.
            if expired_swept or not expire_leases():
                return None
            expired_swept = True
    return current_assignment(annotator=annotator)


def _give_back_slot(assignment: Assignment) -> None:
    # A gold pick was taken outside the railcar's slots: it has none to give back.
    if not assignment.gold_pick:
        Railcar.objects.filter(pk=assignment.railcar_id).update(open_slots=F("open_slots") + 1)


def _candidates(*, annotator: AbstractBaseUser, random_pick: bool = False) -> QuerySet[Railcar]:
    order = ("tiebreak",) if random_pick else ("-priority", "created_at", "tiebreak")
    return (
        Railcar.objects.filter(status=Railcar.Status.IN_POOL, open_slots__gt=0)
        .exclude(Exists(GoldRailcar.objects.filter(railcar=OuterRef("pk"))))
        .exclude(assignments__annotator=annotator)
        .order_by(*order)
        .only("pk", "raters_needed", "open_slots")
    )


def railcars_left(*, annotator: AbstractBaseUser) -> int:
    """How many railcars the pool could still hand this annotator (a count, never which).

    Gold railcars they have not held count too: a lease, gold or not, then takes exactly one
    railcar off their count, so the count cannot tell a gold lease from an ordinary one. (Once
    no ordinary railcar is left for them, the count still shows the gold ones they were never
    handed: it says that some exist, never which.)"""
    return _candidates(annotator=annotator).count() + _gold_candidates(annotator=annotator).count()


def is_random_pick(*, leases_before: int, share: float) -> bool:
    """Whether an annotator's lease number `leases_before` (0-based) is a random pick: the
    integer part of n * share steps up on it, so after n leases floor(n * share) were random."""
    return math.floor((leases_before + 1) * share) > math.floor(leases_before * share)


def _gold_candidates(*, annotator: AbstractBaseUser) -> QuerySet[Railcar]:
    return (
        Railcar.objects.filter(status__in=GOLD_ROUTABLE)
        .filter(Exists(GoldRailcar.objects.filter(railcar=OuterRef("pk"), retired_at__isnull=True)))
        .exclude(assignments__annotator=annotator)
        .order_by("?")
        .only("pk")
    )


def _take_gold(*, annotator: AbstractBaseUser, lease: timedelta) -> Assignment | None:
    """A lease of a gold railcar this annotator never held, or None (none left, or all locked
    this instant: the lease is then an ordinary one)."""
    railcar = _gold_candidates(annotator=annotator).select_for_update(skip_locked=True).first()
    if railcar is None:
        return None
    # Outside the slots: one past every slot this railcar ever had, under its row lock.
    top = Assignment.objects.filter(railcar=railcar).aggregate(top=Max("slot"))["top"] or 0
    return _lease(
        railcar=railcar,
        annotator=annotator,
        slot=max(top, railcar.raters_needed) + 1,
        lease=lease,
        random_pick=False,
        gold_pick=True,
    )


def _take_slot(
    *, annotator: AbstractBaseUser, lease: timedelta, share: float, gold_share: float
) -> Assignment | None:
    # A gold pick only while ordinary work is waiting for this annotator: a railcar handed out
    # from a pool that just said "nothing for you" would give a gold railcar away.
    if _RANDOM.random() < gold_share and _candidates(annotator=annotator).exists():
        gold = _take_gold(annotator=annotator, lease=lease)
        if gold is not None:
            return gold
    random_pick = is_random_pick(
        leases_before=Assignment.objects.filter(annotator=annotator, gold_pick=False).count(),
        share=share,
    )
    candidates = _candidates(annotator=annotator, random_pick=random_pick)
    railcar = candidates.select_for_update(skip_locked=True).first()
    if railcar is None:
        # Every candidate is locked by a concurrent request: wait for the first one instead of
        # answering "no work" while slots remain. PostgreSQL re-checks the row once the lock is
        # granted, so a railcar filled meanwhile is skipped (then the caller looks again).
        railcar = candidates.select_for_update().first()
    if railcar is None:
        return None
    taken = set(
        Assignment.objects.filter(railcar=railcar, status__in=Assignment.HOLDING).values_list(
            "slot", flat=True
        )
    )
    slot = next(s for s in range(1, railcar.raters_needed + 1) if s not in taken)
    assignment = _lease(
        railcar=railcar,
        annotator=annotator,
        slot=slot,
        lease=lease,
        random_pick=random_pick,
        gold_pick=False,
    )
    Railcar.objects.filter(pk=railcar.pk).update(open_slots=F("open_slots") - 1)
    return assignment


def _take_slot_in_one_call(*, annotator: AbstractBaseUser) -> Assignment | None:
    """`_take_slot`'s rules (and `current_assignment` first) in one PL/pgSQL call, which reads
    the pool policies in the same statement."""
    taken = sql_path.lease_next(
        annotator_id=annotator.pk,
        now=timezone.now(),
        policies=POOL_POLICIES,
        gold_draw=_RANDOM.random(),
        gold_statuses=[str(status) for status in GOLD_ROUTABLE],
        pseudonym=new_pseudonym(),
    )
    if taken is None:
        return None
    assignment, fresh = taken
    if fresh:
        _record_lease(assignment, annotator=annotator)
    return assignment


def _lease(
    *,
    railcar: Railcar,
    annotator: AbstractBaseUser,
    slot: int,
    lease: timedelta,
    random_pick: bool,
    gold_pick: bool,
) -> Assignment:
    now = timezone.now()
    assignment = Assignment.objects.create(
        railcar=railcar,
        annotator=annotator,
        slot=slot,
        pseudonym=new_pseudonym(),
        leased_at=now,
        lease_expires_at=now + lease,
        random_pick=random_pick,
        gold_pick=gold_pick,
    )
    _record_lease(assignment, annotator=annotator)
    return assignment


def _record_lease(assignment: Assignment, *, annotator: AbstractBaseUser) -> None:
    # Taken just now, so it holds no exclusion, mask or rating yet: its answer need not look
    # (three queries fewer on every fresh lease; see AssignmentOutputSerializer).
    assignment.fresh_lease = True
    audit.record(
        action="assignment.leased",
        actor=annotator,
        obj=assignment,
        payload={
            "railcar": assignment.railcar_id,
            "slot": assignment.slot,
            "expires_at": assignment.lease_expires_at.isoformat(),
            "random_pick": assignment.random_pick,
            "gold_pick": assignment.gold_pick,
        },
    )


def holder_assignment(
    *, uid: object, annotator: AbstractBaseUser, lock: bool = False
) -> Assignment:
    """The assignment `uid` if `annotator` holds it; NotYourAssignment otherwise, whether it does
    not exist or belongs to someone else (an annotator must not learn which)."""
    queryset = Assignment.objects.select_related("railcar")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    assignment = queryset.filter(uid=uid, annotator=annotator).first()
    if assignment is None:
        raise NotYourAssignment
    return assignment


def lease_over(assignment: Assignment, *, now: object = None) -> bool:
    return assignment.lease_expires_at <= (now or timezone.now())


def release_assignment(
    *, uid: object, annotator: AbstractBaseUser, reason: str, note: str = ""
) -> Assignment:
    """Give the railcar back with a reason (a ReleaseReason from the page and the API) and an
    optional note. An expired lease the sweep has not reached yet may still be released: either
    way its slot goes back to the pool."""
    with transaction.atomic():
        assignment = holder_assignment(uid=uid, annotator=annotator, lock=True)
        if assignment.status != Assignment.Status.ACTIVE:
            raise LeaseLost
        note = note.strip()
        assignment.status = Assignment.Status.RELEASED
        assignment.release_reason = (f"{reason}: {note}" if note else reason)[:200]
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["status", "release_reason", "finished_at"])
        _give_back_slot(assignment)
        audit.record(
            action="assignment.released",
            actor=annotator,
            obj=assignment,
            payload={"reason": reason[:200], "note": note[:200]},
        )
    return assignment
