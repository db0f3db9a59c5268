"""A railcar's final label and the status that goes with it: the one place that sets either.

A railcar has at most one current label (`FinalLabel.objects.current()`; a database constraint
holds it to one). Two things set a label: aggregation, when the raters' consensus is final, and a
senior inspector's decision on an adjudication case. Both call `set_final_label`, so both
supersede the same way (the old row is kept: a frozen dataset version still points at it), move
the railcar to "labeled", record one audit event and write one provenance shape:

    {
        "source": "consensus" | "adjudication",
        "method": "mean" | "calibrated" | "adjudication",
        # The ratings behind the label; each rater's excluded frames as [[frame id, code], ...].
        "ratings": [{"rating", "contamination_pct" (float), "grade", "excluded_frames"}],
        # The raters' consensus as aggregation computed it (None, {} when there was none).
        "mean_pct", "std_pct", "calibrated_pct", "calibrated_std_pct", "grade_votes",
        # The aggregation policy it was held to: {"std_threshold", "std_kind", "method"}.
        "policy",
        # Calibrations used, {annotator id: {"id", "offset", "scale"}}; a decision uses none.
        "calibrations",
        # Why the railcar went to a senior inspector, the rationale code and note of the
        # decision ([] and "" for a consensus).
        "reasons", "rationale_code", "note",
        # The label this one replaced (a reopened railcar), or None.
        "supersedes",
    }

The audit action names the decision that set the label, as it always has (`final_label.set` for a
consensus, on the label; `adjudication.decided` for a decision, on its case); the payload is the
same for both.

`send_to_adjudication` is the other status move: a railcar waiting for a senior inspector.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser

from adjudication.calibration import Calibration
from adjudication.models import AdjudicationCase, Consensus, FinalLabel
from adjudication.policies import AggregationPolicy
from labeling.models import FrameExclusion, Railcar, Rating
from scrapannot import audit

ACTIONS = {
    FinalLabel.Source.CONSENSUS: "final_label.set",
    FinalLabel.Source.ADJUDICATION: "adjudication.decided",
}


def current_label(*, railcar_id: int) -> FinalLabel | None:
    """The label a dataset would take for this railcar now, or None."""
    return FinalLabel.objects.current().filter(railcar_id=railcar_id).first()


def set_final_label(
    *,
    railcar: Railcar,
    contamination_pct: Decimal,
    grade: str,
    source: FinalLabel.Source,
    method: str,
    rating_ids: Sequence[int],
    consensus: Consensus | None,
    actor: AbstractBaseUser | None,
    at: datetime,
    policy: AggregationPolicy | None = None,
    calibrations: Mapping[int, Calibration] | None = None,
    case: AdjudicationCase | None = None,
) -> FinalLabel:
    """Make this the railcar's current label: the current one, if any, is superseded and kept;
    the railcar becomes labeled; one audit event.

    The caller holds the railcar's row lock (select_for_update) in its transaction, so no one
    else sets a label meanwhile. A decision passes its `case` (already closed, with its rationale
    code and note); a consensus passes none. `policy` is the aggregation policy in force when the
    caller has it (aggregation); otherwise it is read off the consensus row. A consensus label is
    decided by no one: `actor` (a rater's task, an admin re-applying a policy) is on the event."""
    if (source == FinalLabel.Source.ADJUDICATION) != (case is not None):
        raise TypeError("a decision's label comes with its case, a consensus's without one")
    previous = FinalLabel.objects.current().select_for_update().filter(railcar=railcar).first()
    if previous is not None:
        previous.superseded_at = at
        previous.save(update_fields=["superseded_at"])
    label = FinalLabel.objects.create(
        railcar=railcar,
        contamination_pct=contamination_pct,
        grade=grade,
        source=source,
        method=method,
        std_pct=consensus.std_pct if consensus is not None else 0.0,
        case=case,
        provenance=_provenance(
            source=source,
            method=method,
            rating_ids=rating_ids,
            consensus=consensus,
            policy=policy,
            calibrations=calibrations or {},
            case=case,
            supersedes=previous,
        ),
        decided_at=at,
        decided_by=actor if case is not None else None,
    )
    label.ratings.set(rating_ids)
    _move(railcar, Railcar.Status.LABELED)
    audit.record(
        action=ACTIONS[source],
        actor=actor,
        obj=case if case is not None else label,
        payload={
            "railcar": railcar.pk,
            "final_label": label.pk,
            "contamination_pct": str(label.contamination_pct),
            "grade": grade,
            "source": source,
            "method": method,
            "case": case.pk if case is not None else None,
            "rationale_code": case.rationale_code if case is not None else "",
            "note": case.note if case is not None else "",
            "supersedes": previous.pk if previous is not None else None,
        },
    )
    return label


def send_to_adjudication(
    *,
    railcar: Railcar,
    reasons: list[str],
    disagreement: float,
    at: datetime,
    case: AdjudicationCase | None = None,
) -> AdjudicationCase:
    """Put a railcar (row locked by the caller) in a senior inspector's queue: its open `case`,
    or a new one, takes the reasons and the queue order. A current label stays current until a
    decision supersedes it. The caller records the event that says why."""
    if case is None:
        case = AdjudicationCase(railcar=railcar, opened_at=at)
    case.reasons, case.disagreement = reasons, disagreement
    case.save()
    _move(railcar, Railcar.Status.IN_ADJUDICATION)
    return case


def _move(railcar: Railcar, status: Railcar.Status) -> None:
    railcar.status = status
    railcar.save(update_fields=["status"])


def _provenance(
    *,
    source: str,
    method: str,
    rating_ids: Sequence[int],
    consensus: Consensus | None,
    policy: AggregationPolicy | None,
    calibrations: Mapping[int, Calibration],
    case: AdjudicationCase | None,
    supersedes: FinalLabel | None,
) -> dict[str, object]:
    if policy is not None:
        held_to: dict[str, object] | None = policy.as_dict()
    elif consensus is not None:
        held_to = {
            "std_threshold": consensus.std_threshold,
            "std_kind": consensus.std_kind,
            "method": consensus.method,
        }
    else:
        held_to = None
    return {
        "source": source,
        "method": method,
        "ratings": _ratings(rating_ids),
        "mean_pct": consensus.mean_pct if consensus is not None else None,
        "std_pct": consensus.std_pct if consensus is not None else None,
        "calibrated_pct": consensus.calibrated_pct if consensus is not None else None,
        "calibrated_std_pct": consensus.calibrated_std_pct if consensus is not None else None,
        "grade_votes": consensus.grade_votes if consensus is not None else {},
        "policy": held_to,
        "calibrations": {
            str(annotator): {"id": c.calibration_id, "offset": c.offset, "scale": c.scale}
            for annotator, c in sorted(calibrations.items())
        },
        "reasons": list(case.reasons) if case is not None else [],
        "rationale_code": case.rationale_code if case is not None else "",
        "note": case.note if case is not None else "",
        "supersedes": supersedes.pk if supersedes is not None else None,
    }


def _ratings(rating_ids: Sequence[int]) -> list[dict[str, object]]:
    # Exclusions do not change the rule (each rater rates the frames they kept), but a label
    # whose raters saw different frames is worth knowing about.
    excluded: dict[int, list[list[object]]] = {pk: [] for pk in rating_ids}
    rows = (
        FrameExclusion.objects.filter(assignment__rating__in=rating_ids)
        .order_by("frame_id")
        .values_list("assignment__rating", "frame_id", "code")
    )
    for rating_id, frame_id, code in rows:
        excluded[rating_id].append([frame_id, code])
    return [
        {
            "rating": pk,
            "contamination_pct": float(pct),
            "grade": grade,
            "excluded_frames": excluded[pk],
        }
        for pk, pct, grade in Rating.objects.filter(pk__in=rating_ids)
        .order_by("id")
        .values_list("id", "contamination_pct", "grade")
    ]
