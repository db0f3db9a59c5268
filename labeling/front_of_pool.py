"""Putting a railcar at the front of the annotation pool, ahead of everything the learning loop
ranks (an escalation from the operator application, which lives above and calls down here).

The learning loop's priority is an uncertainty (mlloop.selection): expected error in units of the
adjudication threshold plus a probability, so at most about 100 / threshold + 1; at any threshold
of 1e-4 pp or more that is below `FRONT_PRIORITY`. Scoring leaves a railcar at the front alone
(mlloop.scoring), so a new production model does not push it back.

Only a railcar still waiting for its raters can be put there: in the pool, or not yet in it
(being checked: it enters the pool at the front once its checks pass). A railcar whose blind
ratings are all in (rated, in adjudication, labeled) answers False: a second round of rating
would need aggregation to tell rating rounds apart, which it does not (it never recomputes a
labeled railcar), so the caller sends such a railcar to a senior inspector instead.
"""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from labeling.models import Railcar
from scrapannot import audit

FRONT_PRIORITY = 1e9
WAITING_FOR_RATERS = (
    # Still being unloaded (labeling.live_ingest): it enters the pool at the front once closed.
    Railcar.Status.RECEIVING,
    Railcar.Status.INGESTED,
    Railcar.Status.CHECKING,
    Railcar.Status.NEEDS_ATTENTION,
    Railcar.Status.IN_POOL,
)


def put_at_front(*, railcar_id: int, reason: str, actor: AbstractBaseUser | None = None) -> bool:
    """True when the railcar now waits for raters at the front of the pool (already there too:
    no second event); False when its ratings are in. One audit event when it moves."""
    with transaction.atomic():
        railcar = Railcar.objects.select_for_update().get(pk=railcar_id)
        if railcar.status not in WAITING_FOR_RATERS:
            return False
        if railcar.priority >= FRONT_PRIORITY:
            return True
        before = railcar.priority
        railcar.priority = FRONT_PRIORITY
        railcar.save(update_fields=["priority"])
        audit.record(
            action="pool.put_at_front",
            actor=actor,
            obj=railcar,
            payload={"reason": reason[:500], "priority_before": before, "status": railcar.status},
        )
    return True


def at_front(railcar_ids: list[int]) -> set[int]:
    """Which of these railcars were put at the front (scoring leaves their priority alone)."""
    return set(
        Railcar.objects.filter(pk__in=railcar_ids, priority__gte=FRONT_PRIORITY).values_list(
            "pk", flat=True
        )
    )
