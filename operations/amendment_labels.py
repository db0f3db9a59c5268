"""Operators' amendments as a label source for dataset versions (seed 000, section 6.2: the
operator's correction feeds back into the loop).

mlloop cannot import this layer, so operations registers a `LabelSource` with mlloop.datasets
(OperationsConfig.ready) and the admin ticks it when freezing a version. Final labels always win:
an amendment labels only a railcar that has no final label, and each item it adds records
source "operator" with its provenance: who amended, the rationale code and note, the estimate it
amended (and that estimate's values and model version). The newest decision on a railcar is the
one in force: an accepted estimate after an amendment withdraws the amendment as a label.
"""

from decimal import Decimal

from mlloop.label_sources import LabelSource, SourcedLabel, register_label_source
from operations.models import OperatorDecision

OPERATOR = "operator"


def operator_labels(exclude: frozenset[int]) -> list[SourcedLabel]:
    newest: dict[int, OperatorDecision] = {}
    decisions = (
        OperatorDecision.objects.exclude(railcar_id__in=exclude)
        .select_related("operator", "estimate", "estimate__model_version")
        .order_by("railcar_id", "-created_at", "-id")
    )
    for decision in decisions:
        newest.setdefault(decision.railcar_id, decision)
    labels = []
    for railcar_id, d in sorted(newest.items()):
        if d.action != OperatorDecision.Action.AMEND:
            continue
        estimate = d.estimate
        pct = d.contamination_pct if d.contamination_pct is not None else estimate.contamination_pct
        labels.append(
            SourcedLabel(
                railcar_id=railcar_id,
                contamination_pct=Decimal(str(pct)).quantize(Decimal("0.1")),
                grade=d.grade or estimate.grade,
                provenance={
                    "source": OPERATOR,
                    "decision": d.pk,
                    "operator": d.operator.get_username(),
                    "decided_at": d.created_at.isoformat(),
                    "rationale_code": d.rationale_code,
                    "note": d.note,
                    "amended": {"contamination_pct": d.contamination_pct, "grade": d.grade},
                    "estimate": {
                        "id": estimate.pk,
                        "model_version": estimate.model_version.number,
                        "layers_scored": estimate.layers_scored,
                        "contamination_pct": estimate.contamination_pct,
                        "grade": estimate.grade,
                        "confidence": estimate.confidence,
                    },
                },
            )
        )
    return labels


def register_operator_label_source() -> None:
    register_label_source(
        LabelSource(
            key=OPERATOR,
            description="operators' amendments of live estimates (source 'operator')",
            labels=operator_labels,
        )
    )
