"""The annotator loop's two hot calls in one round trip each, on PostgreSQL.

`labeling_lease_next` and `labeling_submit_rating` (PL/pgSQL, installed by migration
labeling/0016) do what `pool._take_slot` and `annotation.submit_rating` do with the ORM: the
same candidates, order, locks (SKIP LOCKED, then waiting for a locked candidate), slots and
checks. The ORM spent more CPU compiling those six to ten statements than PostgreSQL spent
running them. Neither function writes the audit event: the callers record it with
`scrapannot.audit.record`, in the same transaction, once the row locks are taken.

The ORM path stays: SQLite (the demo default) always takes it, and LABELING_SQL_PATH=0 selects
it on PostgreSQL; the pool's rule tests run against both.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection

from labeling.models import Assignment, Rating
from scrapannot.models import PolicySetting
from scrapannot.policy import registered

# The function returns labeling_assignment rows; selected in the model's field order, they load
# with Assignment.from_db. (Column names from the model, never from input.)
_ASSIGNMENT_FIELDS = list(Assignment._meta.concrete_fields)
_COLUMNS = ", ".join(f'"{field.column}"' for field in _ASSIGNMENT_FIELDS)
# A pool policy's value, read in the lease's own statement: the admin's value if one is stored
# (set_policy stores it cleaned: a JSON number), else the registered default passed in.
_POLICY = (
    "coalesce((SELECT (s.value #>> '{}')::double precision FROM "  # noqa: S608
    f"{PolicySetting._meta.db_table} s WHERE s.key = %s), %s)"
)
_LEASE_NEXT = (
    f"SELECT {_COLUMNS} FROM labeling_lease_next(%s, %s, "  # noqa: S608
    f"make_interval(mins => trunc({_POLICY})::integer), {_POLICY}, %s < {_POLICY}, %s, %s, %s)"
)


def enabled() -> bool:
    return settings.LABELING_SQL_PATH and connection.vendor == "postgresql"


@dataclass(frozen=True)
class PoolPolicies:
    """The registered policies (their keys) a lease reads: minutes, random-pick share, gold
    share."""

    lease_minutes: str
    random_share: str
    gold_share: str


def _policy(key: str) -> tuple[str, float]:
    """A policy's parameters for _POLICY: its key and its registered default."""
    return key, float(registered()[key].default)


def lease_next(
    *,
    annotator_id: int,
    now: datetime,
    policies: PoolPolicies,
    gold_draw: float,
    gold_statuses: list[str],
    pseudonym: str,
) -> tuple[Assignment, bool] | None:
    """(assignment, fresh): the lease the annotator holds (fresh False) or a new one (True);
    None when nothing is left for them. The pool policies are read in the same statement (no
    round trip of their own); a gold pick is tried when `gold_draw` (uniform in [0, 1)) is
    below the gold share. Call it inside a transaction: the new lease's railcar stays locked
    until it commits."""
    new_uid = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            _LEASE_NEXT,
            [
                annotator_id, now, *_policy(policies.lease_minutes),
                *_policy(policies.random_share), gold_draw, *_policy(policies.gold_share),
                gold_statuses, new_uid, pseudonym,
            ],
        )  # fmt: skip
        row = cursor.fetchone()
    if row is None:
        return None
    assignment = Assignment.from_db(
        connection.alias, [field.attname for field in _ASSIGNMENT_FIELDS], row
    )
    return assignment, assignment.uid == new_uid


@dataclass(frozen=True)
class RatingOutcome:
    """What `labeling_submit_rating` did: `outcome` is created, again (the rating was already
    in: `rating` is the first one), not_yours, lost, expired or nothing_left."""

    outcome: str
    rating: Rating | None
    railcar_id: int | None
    excluded_frames: int | None
    masks: int | None
    closed: bool
    raters_needed: int | None


def submit_rating(
    *,
    uid: uuid.UUID,
    annotator_id: int,
    now: datetime,
    contamination_pct: Decimal,
    grade: str,
    seconds_spent: int,
) -> RatingOutcome:
    """Lock the annotator's assignment `uid`, check it, store the rating and close the railcar
    if it is fully rated; inside the caller's transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM labeling_submit_rating(%s, %s, %s, %s, %s, %s)",
            [uid, annotator_id, now, contamination_pct, grade, seconds_spent],
        )
        (
            outcome, rating_id, pct, rated_grade, seconds, submitted_at, assignment_id,
            railcar_id, excluded_frames, masks, closed, raters_needed,
        ) = cursor.fetchone()  # fmt: skip
    rating = None
    if rating_id is not None:
        rating = Rating.from_db(
            connection.alias,
            ["id", "assignment_id", "railcar_id", "annotator_id", "contamination_pct", "grade",
             "seconds_spent", "submitted_at"],
            [rating_id, assignment_id, railcar_id, annotator_id, pct, rated_grade, seconds,
             submitted_at],
        )  # fmt: skip
    return RatingOutcome(
        outcome=outcome,
        rating=rating,
        railcar_id=railcar_id,
        excluded_frames=excluded_frames,
        masks=masks,
        closed=closed,
        raters_needed=raters_needed,
    )
