"""The operational report of one unloading (seed 000, section 6.2): what the plant's downstream
systems and the shift's paperwork need, in one dict that the page, the JSON API, the CSV and the
webhooks all share.

    "For every unloading, the system compiles an operational report containing the railcar
    identifier, contamination percentage, scrap grade, layer counts, confidence summaries, and
    anomaly/quality flags."

Operators see the real railcar id: the report is never shown to annotators (double-blind).
Shifts and days for the CSV are in `operations.shifts`.
"""

from typing import Any

from django.db.models import Count

from labeling.models import Frame, Railcar
from operations.live import latest_estimate
from operations.models import Escalation, LiveEstimate, OperatorDecision

REPORT_VERSION = 1


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _estimate(estimate: LiveEstimate | None) -> dict[str, Any] | None:
    if estimate is None:
        return None
    return {
        "contamination_pct": round(estimate.contamination_pct, 2),
        "grade": estimate.grade,
        "grade_probs": {k: round(float(v), 4) for k, v in estimate.grade_probs.items()},
        "confidence": round(estimate.confidence, 4),
        "expected_error_pct": round(estimate.expected_error_pct, 2),
        "model_version": estimate.model_version.number,
        "estimated_at": _iso(estimate.created_at),
        # Each scored layer's attention weight and own estimate (seed 000, section 4): which
        # layers the railcar's estimate rests on.
        "per_layer": list(estimate.per_layer),
    }


def _decision(decision: OperatorDecision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "action": decision.action,
        "contamination_pct": decision.contamination_pct,
        "grade": decision.grade or None,
        "rationale_code": decision.rationale_code,
        "note": decision.note,
        "by": decision.operator.get_username(),
        "at": _iso(decision.created_at),
    }


def _escalation(escalation: Escalation | None) -> dict[str, Any] | None:
    if escalation is None:
        return None
    return {
        "route": escalation.route,
        "reasons": escalation.reasons,
        "at": _iso(escalation.created_at),
    }


def _layers(railcar: Railcar, estimate: LiveEstimate | None) -> dict[str, int]:
    layers = railcar.layers.all()
    return {
        "total": layers.count(),
        "eligible": layers.filter(keyframe__quality=Frame.Quality.ELIGIBLE).count(),
        "scored": estimate.layers_scored if estimate else 0,
    }


def _anomalies(railcar: Railcar) -> dict[str, Any]:
    """What went wrong with the unloading itself, independent of the model: frames refused at
    ingest (by reason), frames the quality checks ruled out, and why the railcar needs attention."""
    rejected = dict(
        Frame.objects.filter(railcar=railcar)
        .exclude(rejection="")
        .values_list("rejection")
        .annotate(n=Count("id"))
        .order_by("rejection")
    )
    ineligible = Frame.objects.filter(railcar=railcar, quality=Frame.Quality.INELIGIBLE).count()
    return {
        "rejected_frames": rejected,
        "ineligible_frames": ineligible,
        "attention_reason": railcar.attention_reason or None,
    }


def unloading_report(railcar: Railcar) -> dict[str, Any]:
    """The report of one unloading as it stands now (JSON-ready). A railcar not scored yet has
    `estimate` None and 0 layers scored; no decision or escalation yet, None."""
    estimate = latest_estimate(railcar)
    decision = (
        OperatorDecision.objects.filter(railcar=railcar)
        .select_related("operator")
        .order_by("-created_at", "-id")
        .first()
    )
    escalation = Escalation.objects.filter(railcar=railcar).order_by("-created_at", "-id").first()
    return {
        "report_version": REPORT_VERSION,
        "railcar": {
            "id": railcar.pk,
            "real_id": railcar.real_id,
            "line": railcar.line,
            "camera": railcar.camera,
            "status": railcar.status,
        },
        "unloading": {
            "started_at": _iso(railcar.unloading_started_at),
            "ended_at": _iso(railcar.unloading_ended_at),
        },
        "estimate": _estimate(estimate),
        "layers": _layers(railcar, estimate),
        "quality_flags": dict(estimate.quality_flags) if estimate else {},
        "anomalies": _anomalies(railcar),
        "decision": _decision(decision),
        "escalation": _escalation(escalation),
    }
