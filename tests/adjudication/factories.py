"""Rated railcars made through the real pool and rating path (so the real signal fires)."""

from collections.abc import Sequence
from decimal import Decimal

from django.contrib.auth.models import User

from labeling import annotation, pool
from labeling.models import Railcar
from tests.labeling.factories import annotators, pool_railcar


def rate_railcar(
    railcar: Railcar,
    raters: Sequence[User],
    values: Sequence[str | float],
    grades: Sequence[str],
    *,
    exclude_first_frame_by: Sequence[int] = (),
    seconds: Sequence[int] | None = None,
) -> None:
    """Each rater leases `railcar` (it must be the only one open to them) and rates it."""
    for i, (rater, value, grade) in enumerate(zip(raters, values, grades, strict=True)):
        assignment = pool.next_assignment(annotator=rater)
        assert assignment is not None and assignment.railcar_id == railcar.pk
        if i in exclude_first_frame_by:
            frame = railcar.frames.order_by("index").first()
            annotation.exclude_frame(
                uid=assignment.uid, annotator=rater, frame_uid=frame.uid, code="blur"
            )
        annotation.submit_rating(
            uid=assignment.uid,
            annotator=rater,
            contamination_pct=Decimal(str(value)),
            grade=grade,
            seconds_spent=seconds[i] if seconds else 60 + i,
        )


def rated_railcar(
    values: Sequence[str | float],
    grades: Sequence[str],
    *,
    raters: Sequence[User] | None = None,
    prefix: str = "r",
    **kwargs: object,
) -> tuple[Railcar, list[User]]:
    railcar = pool_railcar(raters=len(values))
    users = list(raters) if raters is not None else annotators(len(values), prefix=prefix)
    rate_railcar(railcar, users, values, grades, **kwargs)
    railcar.refresh_from_db()
    return railcar, users
