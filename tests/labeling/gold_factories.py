"""Gold railcars, made gold through the real import."""

from decimal import Decimal

from labeling import annotation, gold, pool
from labeling.models import GoldRailcar, Railcar
from scrapannot.policy import set_policy
from tests.labeling.factories import pool_railcar


def make_gold(
    railcar: Railcar | None = None,
    *,
    pct: str = "12.3",
    grade: str = "3A",
    source: str = "lab_analysis",
    reference: str = "LAB-REPORT-4471",
) -> GoldRailcar:
    railcar = railcar or pool_railcar()
    (row,) = gold.import_gold(
        truths=[gold.GoldTruth(str(railcar.pk), Decimal(pct), grade, source, reference)],
        actor=None,
    )
    return row


def rate_every_gold(people, reading) -> None:
    """Each person leases until they have rated every gold railcar, reading each `reading(k,
    truth)`; ordinary railcars that come meanwhile are released."""
    set_policy(key="pool.gold_share", value=0.5, actor=None)
    truths = dict(GoldRailcar.objects.values_list("railcar_id", "contamination_pct"))
    for k, person in enumerate(people):
        left = set(truths)
        while left:
            lease = pool.next_assignment(annotator=person)
            if lease.railcar_id not in left:
                pool.release_assignment(uid=lease.uid, annotator=person, reason="other")
                continue
            left.discard(lease.railcar_id)
            value = Decimal(str(reading(k, float(truths[lease.railcar_id]))))
            annotation.submit_rating(
                uid=lease.uid, annotator=person, contamination_pct=value, grade="3A",
                seconds_spent=40,
            )  # fmt: skip
