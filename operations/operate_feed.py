"""What the operator application shows: the unloadings of the lines a user may see, newest first,
each with its latest live estimate, the decision in force and its escalations (the list page, its
polling feed and the API read the same rows), and one unloading in full.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.urls import reverse

from labeling.models import Layer, Railcar
from operations.access import visible_railcars
from operations.live import latest_estimates
from operations.models import Escalation, LiveEstimate, OperatorDecision

FEED_LIMIT = 100
User = AbstractBaseUser | AnonymousUser


def latest_decisions(railcar_ids: list[int]) -> dict[int, OperatorDecision]:
    """The decision in force per railcar: its newest."""
    newest: dict[int, OperatorDecision] = {}
    for d in (
        OperatorDecision.objects.filter(railcar_id__in=railcar_ids)
        .select_related("operator")
        .order_by("railcar_id", "-created_at", "-id")
    ):
        newest.setdefault(d.railcar_id, d)
    return newest


def escalations_of(railcar_ids: list[int]) -> dict[int, list[Escalation]]:
    found: dict[int, list[Escalation]] = {}
    for e in Escalation.objects.filter(railcar_id__in=railcar_ids).order_by("created_at", "id"):
        found.setdefault(e.railcar_id, []).append(e)
    return found


def estimate_data(e: LiveEstimate | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {
        "id": e.pk,
        "contamination_pct": round(e.contamination_pct, 2),
        "grade": e.grade,
        "grade_probs": e.grade_probs,
        "confidence": round(e.confidence, 3),
        "expected_error_pct": round(e.expected_error_pct, 2),
        "quality_flags": e.quality_flags,
        "model_version": e.model_version.number,
        "layers_scored": e.layers_scored,
        "at": e.created_at.isoformat(),
    }


def decision_data(d: OperatorDecision | None) -> dict[str, Any] | None:
    if d is None:
        return None
    return {
        "id": d.pk,
        "action": d.action,
        "estimate": d.estimate_id,
        "contamination_pct": d.contamination_pct,
        "grade": d.grade,
        "rationale_code": d.rationale_code,
        "note": d.note,
        "operator": d.operator.get_username(),
        "at": d.created_at.isoformat(),
    }


def escalation_data(e: Escalation) -> dict[str, Any]:
    return {"route": e.route, "reasons": e.reasons, "at": e.created_at.isoformat()}


def feed_rows(user: User, *, limit: int = FEED_LIMIT) -> list[dict[str, Any]]:
    """The unloadings `user` may see, newest first, in four queries whatever their number."""
    railcars = list(visible_railcars(user).order_by("-unloading_started_at", "-id")[:limit])
    ids = [r.pk for r in railcars]
    estimates, decisions = latest_estimates(ids), latest_decisions(ids)
    escalations = escalations_of(ids)
    return [
        {
            "id": r.pk,
            "real_id": r.real_id,
            "line": r.line,
            "camera": r.camera,
            "started_at": r.unloading_started_at.isoformat(),
            "status": r.status,
            "url": reverse("operations:operate-unloading", args=[r.pk]),
            "estimate": estimate_data(estimates.get(r.pk)),
            "decision": decision_data(decisions.get(r.pk)),
            "escalations": [escalation_data(e) for e in escalations.get(r.pk, [])],
        }
        for r in railcars
    ]


@dataclass(frozen=True)
class LayerView:
    index: int
    has_keyframe: bool
    attention: float | None
    contamination_pct: float | None
    flags: list[str]


@dataclass(frozen=True)
class Unloading:
    railcar: Railcar
    estimate: LiveEstimate | None
    history: list[LiveEstimate]
    layers: list[LayerView]
    decisions: list[OperatorDecision]
    escalations: list[Escalation]


def unloading(railcar: Railcar) -> Unloading:
    """One unloading for its page; the caller got `railcar` from operations.access."""
    history = list(
        LiveEstimate.objects.filter(railcar=railcar)
        .select_related("model_version")
        .order_by("-layers_scored", "-id")
    )
    estimate = history[0] if history else None
    per_layer = {
        int(p["layer"]): p
        for p in (estimate.per_layer if estimate is not None else [])
        if isinstance(p, dict) and "layer" in p
    }
    layers = [
        LayerView(
            index=layer.index,
            has_keyframe=layer.keyframe_id is not None,
            attention=per_layer.get(layer.index, {}).get("attention"),
            contamination_pct=per_layer.get(layer.index, {}).get("contamination_pct"),
            flags=list(per_layer.get(layer.index, {}).get("flags", [])),
        )
        for layer in Layer.objects.filter(railcar=railcar).order_by("index")
    ]
    decisions = list(
        OperatorDecision.objects.filter(railcar=railcar)
        .select_related("operator")
        .order_by("-created_at", "-id")
    )
    return Unloading(
        railcar=railcar,
        estimate=estimate,
        history=history,
        layers=layers,
        decisions=decisions,
        escalations=list(Escalation.objects.filter(railcar=railcar).order_by("created_at")),
    )
