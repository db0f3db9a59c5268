"""The timeline's learning-loop section: the dataset version that froze a railcar's label, the
model trained on it, and the scoring run that scored the railcar; never another railcar's."""

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling.models import Railcar
from mlloop import scoring
from mlloop.datasets import freeze_version
from mlloop.models import ModelVersion, SplitAssignment
from operations import timeline
from scrapannot import audit
from scrapannot.models import AuditEvent
from tests.conftest import client_for
from tests.mlloop.dataset_factories import label
from tests.mlloop.model_factories import grade_for, scrap_railcar, spread, train_run

pytestmark = pytest.mark.django_db


def learning_loop(railcar: Railcar) -> list[timeline.TimelineEntry]:
    audit.seal_pending()  # what the sequencer does within seconds
    return dict(timeline.by_phase(timeline.railcar_events(railcar)))[timeline.LEARNING]


@pytest.fixture
def trained(admin_user) -> tuple[list[Railcar], ModelVersion]:
    """Labeled railcars frozen into a dataset version through the real path (their splits
    pinned, so that train and val are never empty), and a tiny model trained on it: the first
    to succeed, so promoted."""
    labeled = []
    for i, pct in enumerate(spread(12)):
        railcar = scrap_railcar(pct, status=Railcar.Status.LABELED)
        label(railcar, f"{pct:.1f}", grade_for(pct))
        split = ("train", "train", "val")[i % 3]
        SplitAssignment.objects.create(railcar=railcar, split=split, assigned_at=timezone.now())
        labeled.append(railcar)
    model = train_run(freeze_version(actor=admin_user))
    assert model.status == ModelVersion.Status.SUCCEEDED and model.is_production, model.log
    return labeled, model


def test_a_labeled_railcar_shows_its_dataset_version_and_the_model_trained_on_it(
    trained, admin_user
):
    labeled, model = trained
    # The model's scoring runs are about other railcars: none is shown here.
    scoring.score_railcars(railcar_ids=[scrap_railcar(5.0).pk])

    entries = learning_loop(labeled[0])

    assert [e.action for e in entries] == [
        "dataset.frozen", "model.queued", "model.trained", "model.promoted",
    ]  # fmt: skip
    assert all(e.verified for e in entries)
    assert entries[0].summary == "Frozen into dataset v1 (12 railcars)"
    assert entries[3].summary.startswith(f"Model v{model.number} promoted to production")
    url = reverse("operations:railcar-timeline", args=[labeled[0].pk])
    html = client_for(admin_user).get(url).content.decode()
    assert 'data-action="model.promoted" data-state="verified"' in html
    assert "Frozen into dataset v1 (12 railcars)" in html


def test_a_scored_railcar_shows_the_scoring_run_that_scored_it_and_no_other(trained):
    _, model = trained
    first, second = scrap_railcar(2.0), scrap_railcar(7.0)

    scoring.score_railcars(railcar_ids=[first.pk])
    scoring.score_railcars(railcar_ids=[second.pk])
    scoring.score_railcars()  # the hourly run: both are scored by this model already

    audit.seal_pending()
    runs = list(AuditEvent.objects.filter(action="model.scored").order_by("id"))
    assert [e.payload["scored"] for e in runs] == [1, 1, 0]
    assert [(e.action, e.seq) for e in learning_loop(first)] == [("model.scored", runs[0].seq)]
    (entry,) = learning_loop(second)
    assert entry.seq == runs[1].seq and entry.verified
    assert entry.summary.startswith(f"Model v{model.number} scored 1 railcars")
