"""The production model's estimate of a railcar, read from its stored score: one query, no
torch, so that the web process can answer it (registered with adjudication.estimates)."""

from adjudication.estimates import Estimate
from mlloop.models import RailcarScore


def production_estimate(railcar_id: int) -> Estimate | None:
    """The production model's latest score of a railcar, for the adjudication page (seniors
    only)."""
    score = (
        RailcarScore.objects.filter(railcar_id=railcar_id, model_version__is_production=True)
        .select_related("model_version")
        .order_by("-scored_at")
        .first()
    )
    if score is None or not score.grade_probs:
        return None
    grade, probability = max(score.grade_probs.items(), key=lambda item: item[1])
    return Estimate(
        contamination_pct=score.contamination_pct,
        grade=grade,
        grade_probability=probability,
        uncertainty=score.uncertainty,
        model_label=f"model v{score.model_version.number}",
    )
