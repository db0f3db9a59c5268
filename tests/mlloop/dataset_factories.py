"""Railcars with final labels, made directly (fast) where the rating path does not matter."""

from decimal import Decimal

from django.utils import timezone

from adjudication.models import FinalLabel
from labeling.models import Railcar
from tests.labeling.factories import pool_railcar


def label(railcar: Railcar, pct: str = "2.0", grade: str = "3A", std: float = 0.1) -> FinalLabel:
    return FinalLabel.objects.create(
        railcar=railcar,
        contamination_pct=Decimal(pct),
        grade=grade,
        source=FinalLabel.Source.CONSENSUS,
        method="mean",
        std_pct=std,
        provenance={"test": True},
        decided_at=timezone.now(),
    )


def labeled_railcar(
    pct: str = "2.0", grade: str = "3A", std: float = 0.1, *, with_files: bool = False
) -> Railcar:
    railcar = pool_railcar(layers=1, frames_per_layer=1, with_files=with_files)
    label(railcar, pct, grade, std)
    return railcar


def relabel(railcar: Railcar, pct: str, grade: str = "3A", std: float = 0.1) -> FinalLabel:
    """A new current label superseding the old one (the old row is kept)."""
    FinalLabel.objects.filter(railcar=railcar, superseded_at=None).update(
        superseded_at=timezone.now()
    )
    return label(railcar, pct, grade, std)
