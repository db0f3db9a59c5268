"""Submitting a rating: the lease's checks, the rating, the railcar closed once fully rated.

On PostgreSQL the checks and writes are one call of a PL/pgSQL function (`labeling.sql_path`);
the ORM path (SQLite, or LABELING_SQL_PATH=0) does the same in ten queries. Either way the audit
events are written here, by `scrapannot.audit.record`, in the same transaction.
"""

from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import IntegerField, Subquery
from django.utils import timezone

from labeling import sql_path
from labeling.models import Assignment, Frame, FrameExclusion, GoldRailcar, Mask, Railcar, Rating
from labeling.pool import LeaseExpired, LeaseLost, NotYourAssignment, holder_assignment, lease_over
from labeling.signals import railcar_rated
from scrapannot import audit

Status = Assignment.Status


class NothingLeftToRate(Exception):
    """The annotator excluded every eligible frame: there is nothing to rate, so the railcar
    goes back with a reason (frames_unusable) instead of getting a rating of nothing."""


def submit_rating(
    *,
    uid: object,
    annotator: AbstractBaseUser,
    contamination_pct: Decimal,
    grade: str,
    seconds_spent: int,
) -> tuple[Rating, bool]:
    """Record the rating; (rating, created). Submitting again (a double click, a retried
    request) returns the first rating unchanged. A rating after the lease's end is refused
    (LeaseExpired), as is one of a railcar whose every frame was excluded (NothingLeftToRate).
    On PostgreSQL the checks and writes are one function call (`labeling.sql_path`)."""
    if sql_path.enabled():
        return _submit_rating_in_one_call(
            uid=uid, annotator=annotator, contamination_pct=contamination_pct, grade=grade,
            seconds_spent=seconds_spent,
        )  # fmt: skip
    with transaction.atomic():
        assignment = holder_assignment(uid=uid, annotator=annotator, lock=True)
        if assignment.status == Status.SUBMITTED:
            return assignment.rating, False
        if assignment.status != Status.ACTIVE:
            raise LeaseLost
        now = timezone.now()
        if lease_over(assignment, now=now):
            raise LeaseExpired
        # What is left to rate, and the work counts the audit event keeps, in one query.
        work = _work_counts(assignment)
        if not work.pop("frames_left"):
            raise NothingLeftToRate
        rating = Rating.objects.create(
            assignment=assignment,
            railcar_id=assignment.railcar_id,
            annotator=annotator,
            contamination_pct=contamination_pct,
            grade=grade,
            seconds_spent=seconds_spent,
            submitted_at=now,
        )
        assignment.status = Status.SUBMITTED
        assignment.finished_at = now
        assignment.save(update_fields=["status", "finished_at"])
        # Lock order: the railcar row before any audit event, as every other writer (the pool
        # takes the railcar row, then records) does; with inline sealing (AUDIT_SEAL_INLINE)
        # the event holds the chain's lock, and the other way round would deadlock.
        closed = _close_if_fully_rated(railcar_id=assignment.railcar_id)
        _record_rating(rating, annotator=annotator, work=work, closed=closed)
    return rating, True


# What the rating function answers instead of raising (it only reads before deciding).
_REFUSALS: dict[str, type[Exception]] = {
    "not_yours": NotYourAssignment,
    "lost": LeaseLost,
    "expired": LeaseExpired,
    "nothing_left": NothingLeftToRate,
}


def _submit_rating_in_one_call(
    *,
    uid: object,
    annotator: AbstractBaseUser,
    contamination_pct: Decimal,
    grade: str,
    seconds_spent: int,
) -> tuple[Rating, bool]:
    # An id that is no UUID fails here as it does in the ORM's lookup.
    uid = Assignment._meta.get_field("uid").to_python(uid)
    with transaction.atomic():
        done = sql_path.submit_rating(
            uid=uid, annotator_id=annotator.pk, now=timezone.now(),
            contamination_pct=contamination_pct, grade=grade, seconds_spent=seconds_spent,
        )  # fmt: skip
        if done.outcome in _REFUSALS:
            raise _REFUSALS[done.outcome]
        if done.outcome == "again":
            return done.rating, False
        # As the ORM path answers: the values as submitted (the same numbers as stored).
        rating = done.rating
        rating.contamination_pct, rating.grade = contamination_pct, grade
        closed = None
        if done.closed:
            closed = Railcar(
                pk=done.railcar_id, status=Railcar.Status.RATED, raters_needed=done.raters_needed
            )
        work = {"excluded_frames": done.excluded_frames, "masks": done.masks}
        _record_rating(rating, annotator=annotator, work=work, closed=closed)
    return rating, True


def _record_rating(
    rating: Rating, *, annotator: AbstractBaseUser, work: dict[str, int], closed: Railcar | None
) -> None:
    """The rating's audit event (and the railcar's, when it closed it), after the row locks:
    with inline sealing (AUDIT_SEAL_INLINE) the event holds the chain's lock, and taking a row
    lock after it would deadlock against the pool."""
    audit.record(
        action="rating.submitted",
        actor=annotator,
        obj=rating,
        payload={
            "assignment": rating.assignment_id,
            "contamination_pct": str(rating.contamination_pct),
            "grade": rating.grade,
            "seconds_spent": rating.seconds_spent,
            **work,
        },
    )
    if closed is not None:
        audit.record(action="railcar.rated", obj=closed, payload={"ratings": closed.raters_needed})
        transaction.on_commit(lambda: railcar_rated.send(sender=Railcar, railcar_id=closed.pk))


class _CountOf(Subquery):
    """The number of rows a queryset has, as a scalar subquery."""

    template = "(SELECT count(*) FROM (%(subquery)s) _rows)"
    output_field = IntegerField()


def _work_counts(assignment: Assignment) -> dict[str, int]:
    """frames_left (as `frames_left`), excluded_frames and masks of the assignment, counted in
    one query."""
    excluded = FrameExclusion.objects.filter(assignment_id=assignment.pk)
    eligible = Frame.objects.filter(
        railcar_id=assignment.railcar_id, quality=Frame.Quality.ELIGIBLE
    ).exclude(pk__in=excluded.values("frame_id"))
    counts = (
        Assignment.objects.filter(pk=assignment.pk)
        .values(
            n_left=_CountOf(eligible.values("pk")),
            n_excluded=_CountOf(excluded.values("pk")),
            n_masks=_CountOf(Mask.objects.filter(assignment_id=assignment.pk).values("pk")),
        )
        .get()
    )
    return {
        "frames_left": counts["n_left"],
        "excluded_frames": counts["n_excluded"],
        "masks": counts["n_masks"],
    }


def _close_if_fully_rated(*, railcar_id: int) -> Railcar | None:
    """Mark the railcar rated once its last needed rating is in; the railcar if so. A gold
    railcar is never closed: it keeps collecting ratings that score raters, never a consensus."""
    railcar = (
        Railcar.objects.select_for_update().only("pk", "status", "raters_needed").get(pk=railcar_id)
    )
    if railcar.status != Railcar.Status.IN_POOL:
        return None
    if GoldRailcar.objects.filter(railcar_id=railcar_id).exists():
        return None
    if Rating.objects.filter(railcar_id=railcar_id).count() < railcar.raters_needed:
        return None
    railcar.status = Railcar.Status.RATED
    railcar.save(update_fields=["status"])
    return railcar
