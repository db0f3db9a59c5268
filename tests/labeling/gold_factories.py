"""Gold railcars, made gold through the real import."""

from decimal import Decimal

from labeling import gold
from labeling.models import GoldRailcar, Railcar
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
