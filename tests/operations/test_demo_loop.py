"""The demo's learning loop, once: raters calibrated, a dataset frozen, a model trained and
promoted, railcars scored, each scheduled step audited as a "run now"; and nothing twice."""

import pytest
from django.urls import reverse
from django.utils import timezone

from adjudication.estimates import model_estimate
from adjudication.models import AdjudicationCase, Consensus, RaterCalibration
from labeling.models import Railcar
from mlloop.models import ModelVersion, RailcarScore, SplitAssignment
from operations.demo_loop import ACTOR_LABEL, close_the_loop
from operations.schedules import RUN_NOW
from scrapannot.audit import verify_chain
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rate_railcar
from tests.conftest import client_for
from tests.labeling.factories import annotators, pool_railcar
from tests.mlloop.version_factories import GRADES

# Committed for real: each step's task is sent when its audit event commits, and the next step
# reads what the task wrote (as in `manage.py demo`, which runs outside any transaction).
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def tiny_model(settings) -> None:
    settings.MLLOOP = settings.MLLOOP | {"BACKBONE": "test_convnext", "IMAGE_SIZE": 32, "EPOCHS": 2}


@pytest.fixture
def rated_world(loop_schedules) -> dict[str, Railcar]:
    """Nine railcars rated in agreement (splits pinned so none is empty), one disputed, and one
    still in the pool; the same three raters throughout."""
    raters = annotators(3, prefix="loop-")
    for i in range(9):
        railcar = pool_railcar(raters=3)
        value = 1.0 + i
        rate_railcar(railcar, raters, [value, value + 0.1, value + 0.2], [GRADES[i % 4]] * 3)
        SplitAssignment.objects.create(
            railcar=railcar, split=["train", "val", "test"][i % 3], assigned_at=timezone.now()
        )
    disputed = pool_railcar(raters=3)
    rate_railcar(disputed, raters, [1.0, 5.0, 9.0], ["3A", "3A1", "3AH"])
    return {"disputed": disputed, "unrated": pool_railcar(raters=3)}


def test_the_loop_trains_promotes_scores_and_calibrates_once(tiny_model, rated_world, admin_user):
    assert model_estimate(rated_world["disputed"].pk) is None

    report = close_the_loop()

    production = ModelVersion.objects.get(is_production=True)
    assert production.status == ModelVersion.Status.SUCCEEDED, report.summary()
    scored = set(RailcarScore.objects.values_list("railcar_id", flat=True))
    assert {rated_world["disputed"].pk, rated_world["unrated"].pk} <= scored
    assert model_estimate(rated_world["disputed"].pk) is not None
    assert RaterCalibration.objects.count() == 3
    consensus = Consensus.objects.get(railcar=rated_world["disputed"])
    assert consensus.calibrated_pct is not None
    runs = AuditEvent.objects.filter(action=RUN_NOW).order_by("id")
    assert [e.payload["task"] for e in runs] == [
        "adjudication.estimate_calibrations",
        "mlloop.retrain",
        "mlloop.score_railcars",
    ]
    assert {e.actor_label for e in runs} == {ACTOR_LABEL}
    assert verify_chain().ok
    # The case page now has the model's estimate and the calibrated consensus.
    case = AdjudicationCase.objects.get(railcar=rated_world["disputed"])
    page = client_for(admin_user).get(reverse("adjudication:case", args=[case.pk]))
    assert "No model estimate" not in page.content.decode()
    assert "no rater calibration yet" not in page.content.decode()

    events = AuditEvent.objects.count()
    again = close_the_loop()
    assert "has run already" in again.summary()
    assert AuditEvent.objects.count() == events
    assert ModelVersion.objects.count() == 1


def test_a_loop_with_nothing_to_train_on_is_not_retried_by_the_next_demo(loop_schedules):
    first = close_the_loop()
    events = AuditEvent.objects.count()

    again = close_the_loop()

    assert "no dataset version frozen" in first.summary()
    assert not ModelVersion.objects.exists()
    assert "has run already" in again.summary()
    assert AuditEvent.objects.count() == events
