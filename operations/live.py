"""Live estimates of unloadings (seed 000, section 6.2): as a layer's keyframe passes the quality
checks, the production model scores the railcar's checked layers and one `LiveEstimate` is
recorded. The queries the operator pages and reports read estimates with live here too.
"""

from collections.abc import Iterable

from django.db.models import OuterRef, Subquery

from labeling.models import Railcar
from operations.models import LiveEstimate

# Newest first: the estimate over the most layers, then the latest written (a new model version
# scoring the same layers again).
NEWEST = ("-layers_scored", "-id")


def latest_estimate(railcar: Railcar | int) -> LiveEstimate | None:
    """The railcar's newest estimate, or None."""
    railcar_id = railcar.pk if isinstance(railcar, Railcar) else railcar
    return (
        LiveEstimate.objects.filter(railcar_id=railcar_id)
        .select_related("model_version")
        .order_by(*NEWEST)
        .first()
    )


def latest_estimates(railcar_ids: Iterable[int]) -> dict[int, LiveEstimate]:
    """The newest estimate of each of `railcar_ids` that has one, in one query."""
    ids = list(railcar_ids)
    if not ids:
        return {}
    # A correlated subquery rather than DISTINCT ON, so that SQLite (the first-run default)
    # answers it too.
    newest = LiveEstimate.objects.filter(railcar_id=OuterRef("railcar_id")).order_by(*NEWEST)
    rows = LiveEstimate.objects.filter(
        railcar_id__in=ids, pk=Subquery(newest.values("pk")[:1])
    ).select_related("model_version")
    return {row.railcar_id: row for row in rows}
