"""The learning loop's audit events about one railcar, for its timeline.

mlloop records its events on dataset versions and model versions, never on a railcar. A
railcar's are: every event of a dataset version that froze its label (frozen, exported); every
event of a model trained on such a version (queued, trained or failed, promoted, rolled back)
except its scoring runs; and, for each model that scored the railcar, the scoring run that wrote
its score. A production model records a scoring run every hour and whenever a railcar enters the
pool, nearly all of them about other railcars, so a model's scoring runs are never taken
wholesale: only the first one recorded after the railcar's score. (A scoring event names counts,
not railcars; of two runs of one model that overlap, the one that ended first is shown.)
"""

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q

from labeling.models import Railcar
from mlloop.models import DatasetItem, RailcarScore
from scrapannot.models import AuditEvent

DATASET = "mlloop.datasetversion"
MODEL = "mlloop.modelversion"
SCORED = "model.scored"
# A scoring run records its event when it ends, at most the hard time limit of the scoring task
# (mlloop.tasks.score_railcars: 3,300 s) after it wrote a score. A longer run of `manage.py
# score` leaves the score without its event here.
SCORING_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class LearningObjects:
    datasets: frozenset[str]
    # Trained on one of `datasets`.
    models: frozenset[str]
    # {model id: when it scored the railcar}
    scored_at: Mapping[str, datetime]

    def query(self) -> Q:
        """Every event `pick` may keep (and of a scoring model, its runs in the window)."""
        query = Q(object_type=DATASET, object_id__in=self.datasets) | (
            Q(object_type=MODEL, object_id__in=self.models) & ~Q(action=SCORED)
        )
        for model, at in self.scored_at.items():
            query |= Q(
                object_type=MODEL,
                object_id=model,
                action=SCORED,
                created_at__gte=at,
                created_at__lte=at + SCORING_WINDOW,
            )
        return query

    def pick(self, events: Iterable[AuditEvent]) -> list[AuditEvent]:
        """The railcar's among `events` (oldest first): see the module's docstring."""
        picked, scoring_shown = [], set()
        for e in events:
            if e.object_type == DATASET and e.object_id in self.datasets:
                picked.append(e)
            elif e.object_type != MODEL:
                continue
            elif e.action != SCORED:
                if e.object_id in self.models:
                    picked.append(e)
            elif e.object_id not in scoring_shown and self._after_score(e):
                scoring_shown.add(e.object_id)
                picked.append(e)
        return picked

    def _after_score(self, event: AuditEvent) -> bool:
        at = self.scored_at.get(event.object_id)
        return at is not None and at <= event.created_at <= at + SCORING_WINDOW


def learning_objects(railcar: Railcar) -> LearningObjects:
    """Two queries, whatever the number of versions: the dataset versions holding the railcar
    joined to the models trained on them, and the railcar's scores."""
    pairs = list(
        DatasetItem.objects.filter(railcar=railcar).values_list(
            "version_id", "version__model_versions"
        )
    )
    scores = RailcarScore.objects.filter(railcar=railcar).values_list(
        "model_version_id", "scored_at"
    )
    return LearningObjects(
        datasets=frozenset(str(version) for version, _ in pairs),
        models=frozenset(str(model) for _, model in pairs if model is not None),
        scored_at={str(model): at for model, at in scores},
    )


def _metric(value: Any) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{value:.3f}" if number else str(value)


def _headline(split: Any) -> str:
    split = split if isinstance(split, dict) else {}
    return f"MAE {_metric(split.get('mae'))}, grade accuracy {_metric(split.get('accuracy'))}"


_Summary = Callable[[dict[str, Any], Mapping[int, int]], str]
LEARNING_SUMMARIES: dict[str, _Summary] = {
    "dataset.frozen": lambda p, f: (
        f"Frozen into dataset v{p.get('number')} ({p.get('railcar_count')} railcars)"
    ),
    "dataset.exported": lambda p, f: (
        f"Dataset v{p.get('number')} exported to a {p.get('to')}"
        + (" with real ids" if p.get("real_ids") else "")
    ),
    "model.queued": lambda p, f: (
        f"Model v{p.get('number')} queued to train on dataset v{p.get('dataset_version')}"
    ),
    "model.trained": lambda p, f: (
        f"Model v{p.get('number')} trained on dataset v{p.get('dataset_version')}: test "
        f"{_headline(p.get('test'))}"
    ),
    "model.failed": lambda p, f: f"Model v{p.get('number')} failed: {p.get('reason')}",
    "model.promoted": lambda p, f: (
        f"Model v{p.get('number')} promoted to production"
        + (f" over v{p['replaced']}" if p.get("replaced") is not None else "")
        + (f": {p['reason']}" if p.get("reason") else "")
    ),
    "model.rolled_back": lambda p, f: (
        f"Rolled back from model v{p.get('from')} to v{p.get('to')}"
        + (f": {p['reason']}" if p.get("reason") else "")
    ),
    SCORED: lambda p, f: (
        f"Model v{p.get('number')} scored {p.get('scored')} railcars "
        f"({p.get('random_picks')} random picks)"
    ),
}
