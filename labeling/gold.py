"""Gold truth: the one place that marks a railcar gold, changes its truth or retires it.

The page, the API and the management command (adjudication.gold_views, gold_apis,
import_gold) all call `import_gold`; every change is an audit event with the truth and its
source. What a gold railcar does in the pool is in `labeling.pool`.
"""

import contextlib
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labeling.models import GoldRailcar, GoldSource, Railcar
from scrapannot import audit


class UnknownRailcar(Exception):
    """No railcar, or more than one, answers to the reference given."""


@dataclass(frozen=True)
class GoldTruth:
    railcar: str  # the railcar's database id, uid, or plant id (when only one railcar has it)
    contamination_pct: Decimal
    grade: str
    source: str  # a GoldSource
    reference: str = ""


def find_railcar(reference: str) -> Railcar:
    reference = reference.strip()
    query = Q(real_id=reference)
    if reference.isdigit() and len(reference) < 19:
        query |= Q(pk=int(reference))
    else:
        with contextlib.suppress(ValueError):  # not a uid: a plant id only
            query |= Q(uid=uuid.UUID(reference))
    found = list(Railcar.objects.filter(query)[:2])
    if len(found) != 1:
        raise UnknownRailcar(
            f"{reference!r}: {'no railcar' if not found else 'more than one railcar'} "
            "(give its id to pick one)"
        )
    return found[0]


def import_gold(
    *, truths: list[GoldTruth], actor: AbstractBaseUser | None, actor_label: str | None = None
) -> list[GoldRailcar]:
    """Mark each railcar gold with its truth (or correct the truth of one already gold, which
    also brings a retired one back); all or nothing, one audit event per railcar."""
    now = timezone.now()
    rows = []
    for truth in truths:
        if truth.source not in GoldSource.values:
            raise ValueError(f"source {truth.source!r} is not one of {GoldSource.values}")
    with transaction.atomic():
        railcars = [find_railcar(truth.railcar) for truth in truths]
        # Every row lock before the first audit event (see audit.record), in id order.
        list(
            Railcar.objects.select_for_update()
            .filter(pk__in=[r.pk for r in railcars])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        for truth, railcar in zip(truths, railcars, strict=True):
            previous = GoldRailcar.objects.filter(railcar=railcar).first()
            gold, created = GoldRailcar.objects.update_or_create(
                railcar=railcar,
                defaults={
                    "contamination_pct": truth.contamination_pct,
                    "grade": truth.grade,
                    "source": truth.source,
                    "reference": truth.reference,
                    "imported_at": now,
                    "imported_by": actor,
                    "retired_at": None,
                },
            )
            audit.record(
                action="gold.imported" if created else "gold.corrected",
                actor=actor,
                actor_label=actor_label,
                obj=railcar,
                payload={
                    "railcar": railcar.pk,
                    "contamination_pct": str(truth.contamination_pct),
                    "grade": truth.grade,
                    "source": truth.source,
                    "reference": truth.reference,
                    "previous": None
                    if previous is None
                    else {
                        "contamination_pct": str(previous.contamination_pct),
                        "grade": previous.grade,
                        "source": previous.source,
                        "reference": previous.reference,
                    },
                },
            )
            rows.append(gold)
    return rows


def retire_gold(*, railcar_id: int, actor: AbstractBaseUser | None) -> bool:
    """Hand the gold railcar out no more (its ratings keep scoring raters); False if it was not
    gold or already retired."""
    with transaction.atomic():
        changed = GoldRailcar.objects.filter(railcar_id=railcar_id, retired_at__isnull=True).update(
            retired_at=timezone.now()
        )
        if changed:
            audit.record(action="gold.retired", actor=actor, payload={"railcar": railcar_id})
    return bool(changed)


def gold_truths() -> dict[int, tuple[float, str]]:
    """{railcar id: (contamination %, grade)} of every gold railcar, retired ones included."""
    return {
        railcar_id: (float(pct), grade)
        for railcar_id, pct, grade in GoldRailcar.objects.values_list(
            "railcar_id", "contamination_pct", "grade"
        )
    }
