"""Scoring unlabeled railcars with the production model and the active-learning pool order."""

import math

import pytest
import torch
from django.test import Client

from adjudication.estimates import model_estimate
from labeling import pool
from labeling.models import Railcar
from labeling.policies import RANDOM_PICK_SHARE
from mlloop import registry, scoring
from mlloop.artifacts import ArtifactError
from mlloop.models import RailcarScore
from mlloop.scoring import predict
from mlloop.selection import uncertainty
from mlloop.training import fit
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.labeling.factories import annotators
from tests.mlloop.dataset_factories import label
from tests.mlloop.model_factories import feature_bags, production_model, scrap_railcar

torch.set_num_threads(2)
Status = Railcar.Status


def test_the_ensemble_gives_a_spread_an_expected_error_and_a_grade_distribution():
    trained = fit(feature_bags(30, seed=5), feature_bags(8, seed=6), _config(ensemble=5))
    bag = feature_bags(1, seed=7)[0].features

    prediction = predict(trained, bag)

    assert prediction.contamination_spread > 0  # bootstrap-trained members disagree
    assert prediction.expected_error_pct >= 0
    assert sum(prediction.grade_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert 0 <= prediction.grade_entropy <= math.log(4) + 1e-9
    assert not trained.model.training
    # No dropout at scoring: the same bag scores the same.
    assert predict(trained, bag).contamination_pct == prediction.contamination_pct


def test_the_expected_error_grows_with_the_level_when_the_errors_do():
    """Held-out labels noisier the higher the contamination (as raters' are): the error model
    learns the level term, and a high estimate expects a larger error than a low one."""
    import numpy as np

    from mlloop.training import Bag, fit_error_model

    trained = fit(feature_bags(40, seed=5), feature_bags(8, seed=6), _config(ensemble=3))
    rng = np.random.default_rng(3)
    noisy = [
        Bag(b.features, max(0.0, b.contamination + rng.normal(scale=0.1 + 0.4 * b.contamination)),
            b.grade)
        for b in feature_bags(60, seed=8)
    ]  # fmt: skip

    fit_error_model(trained, noisy)

    assert float(trained.model.error_level_slope) > 0
    bags = sorted(feature_bags(20, seed=12), key=lambda b: b.contamination)
    low, high = predict(trained, bags[0].features), predict(trained, bags[-1].features)
    assert high.contamination_pct > low.contamination_pct
    assert high.expected_error_pct > low.expected_error_pct


def _config(**overrides):
    from mlloop.config import model_config

    return model_config(epochs=5, **overrides)


def test_the_uncertainty_is_expected_error_in_thresholds_plus_the_grade_error_chance():
    assert uncertainty(expected_error_pct=0.0, top_grade_probability=1.0, std_threshold=0.4) == 0
    assert uncertainty(
        expected_error_pct=0.4, top_grade_probability=1.0, std_threshold=0.4
    ) == pytest.approx(1.0)
    assert uncertainty(
        expected_error_pct=0.0, top_grade_probability=0.25, std_threshold=0.4
    ) == pytest.approx(0.75)
    # A sure grade adds nothing: the contamination decides.
    assert uncertainty(
        expected_error_pct=1.2, top_grade_probability=0.99, std_threshold=0.4
    ) > uncertainty(expected_error_pct=0.2, top_grade_probability=0.6, std_threshold=0.4)


@pytest.mark.django_db
def test_scores_are_written_for_unlabeled_railcars_only():
    model = production_model()
    in_pool = [scrap_railcar(p) for p in (1.0, 5.0, 9.0)]
    adjudicating = scrap_railcar(4.0, status=Status.IN_ADJUDICATION)
    labeled = scrap_railcar(3.0)
    label(labeled, "3.0", "3A1")  # a final label already: nothing to learn from a score
    needs_attention = scrap_railcar(2.0, status=Status.NEEDS_ATTENTION)

    report = scoring.score_railcars()

    scored = set(RailcarScore.objects.values_list("railcar_id", flat=True))
    assert scored == {r.pk for r in in_pool} | {adjudicating.pk}
    assert report.model_number == model.number and report.scored == 4
    assert labeled.pk not in scored and needs_attention.pk not in scored
    score = RailcarScore.objects.get(railcar=in_pool[0])
    assert set(score.grade_probs) == {"3A", "3A1", "3AH", "cast iron"}
    assert score.uncertainty >= 0 and score.model_version_id == model.pk
    event = AuditEvent.objects.filter(action="model.scored").get()
    assert event.payload["scored"] == 4


@pytest.mark.django_db
def test_the_pool_hands_out_the_most_uncertain_railcar_first(admin_user):
    production_model()
    set_policy(key=RANDOM_PICK_SHARE, value=0.0, actor=admin_user)
    railcars = [scrap_railcar(p, raters=1) for p in (0.5, 9.5, 4.0, 2.0, 7.0, 6.0)]

    scoring.score_railcars()

    uncertainty_of = dict(RailcarScore.objects.values_list("railcar_id", "uncertainty"))
    priority = dict(
        Railcar.objects.filter(pk__in=[r.pk for r in railcars]).values_list("pk", "priority")
    )
    expected = sorted(priority, key=priority.get, reverse=True)
    assert len(set(uncertainty_of.values())) == len(railcars)  # the ordering is meaningful
    # (Not "and it is not the age order": a tiny model can embed near-identical railcars, whose
    # discounted priorities then tie at 0 after the first; the pool then serves them by age, which
    # is the age order one time in six. The first railcar is the most uncertain either way.)
    assert expected[0] == max(uncertainty_of, key=uncertainty_of.get)
    assert all(priority[pk] <= uncertainty_of[pk] + 1e-9 for pk in priority)  # only discounted
    handed_out = [
        pool.next_assignment(annotator=user).railcar_id for user in annotators(len(railcars))
    ]
    assert handed_out == expected


@pytest.mark.django_db
def test_scoring_again_with_the_same_model_changes_nothing():
    production_model()
    railcars = [scrap_railcar(p) for p in (1.0, 8.0)]
    scoring.score_railcars()
    before = dict(
        Railcar.objects.filter(pk__in=[r.pk for r in railcars]).values_list("pk", "priority")
    )

    report = scoring.score_railcars()

    assert report.scored == 0
    assert RailcarScore.objects.count() == 2
    after = dict(
        Railcar.objects.filter(pk__in=[r.pk for r in railcars]).values_list("pk", "priority")
    )
    assert after == before


@pytest.mark.django_db
def test_without_a_production_model_nothing_is_scored():
    railcar = scrap_railcar(3.0)

    report = scoring.score_railcars()

    assert report.note == "no production model" and report.model_number is None
    assert not RailcarScore.objects.exists()
    railcar.refresh_from_db()
    assert railcar.priority == 0.0


@pytest.mark.django_db
def test_a_railcar_whose_frames_are_unreadable_is_skipped_not_fatal():
    from django.core.files.storage import default_storage

    production_model()
    broken, fine = scrap_railcar(3.0), scrap_railcar(6.0)
    for frame in broken.frames.all():
        default_storage.delete(frame.file.name)

    report = scoring.score_railcars()

    assert report.skipped == [broken.pk] and report.scored == 1
    assert list(RailcarScore.objects.values_list("railcar_id", flat=True)) == [fine.pk]


@pytest.mark.django_db
def test_a_corrupt_production_artifact_stops_scoring_with_a_clear_error():
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    model = production_model()
    scrap_railcar(3.0)
    default_storage.delete(model.artifact.name)
    default_storage.save(model.artifact.name, ContentFile(b"garbage"))
    registry._cache.clear()  # a fresh process: the damaged file is read

    with pytest.raises(ArtifactError, match="altered"):
        scoring.score_railcars()
    assert not RailcarScore.objects.exists()


@pytest.mark.django_db
def test_the_adjudication_page_gets_the_production_models_estimate():
    model = production_model()
    railcar = scrap_railcar(4.0, status=Status.IN_ADJUDICATION)
    unscored = scrap_railcar(4.0, status=Status.RATED)
    scoring.score_railcars(railcar_ids=[railcar.pk])

    estimate = model_estimate(railcar.pk)

    score = RailcarScore.objects.get(railcar=railcar)
    assert estimate.model_label == f"model v{model.number}"
    assert estimate.contamination_pct == score.contamination_pct
    assert estimate.grade_probability == max(score.grade_probs.values())
    assert model_estimate(unscored.pk) is None


@pytest.mark.django_db
def test_an_annotator_never_sees_the_score_or_the_priority(annotator):
    production_model()
    railcar = scrap_railcar(5.0, raters=1)
    scoring.score_railcars()
    score = RailcarScore.objects.get(railcar=railcar)
    railcar.refresh_from_db()
    client = Client()
    client.force_login(annotator)

    assignment = pool.next_assignment(annotator=annotator)
    pages = [
        client.get(f"/api/v1/assignments/{assignment.uid}/"),
        client.get(f"/annotate/{assignment.uid}/"),
        client.get("/annotate/"),
    ]

    secrets = {
        f"{score.contamination_pct:.3f}"[:5],
        f"{score.uncertainty:.3f}"[:5],
        f"{railcar.priority:.3f}"[:5],
        "uncertainty",
        "priority",
        "model v",
    }
    for response in pages:
        assert response.status_code == 200
        body = response.content.decode()
        assert not [s for s in secrets if s in body], response.request["PATH_INFO"]


@pytest.mark.django_db
def test_a_railcar_entering_the_pool_is_scored_at_once(django_capture_on_commit_callbacks):
    from labeling import pipeline
    from labeling.policies import quality_thresholds

    set_policy(key=RANDOM_PICK_SHARE, value=0.0, actor=None)
    # The live estimate of the tiny model is unconfident: its escalation to the front of the
    # pool (operations.escalation) is not what this test is about.
    set_policy(key="operate.escalate.confidence_route", value="off", actor=None)
    railcar = scrap_railcar(6.0)
    Railcar.objects.filter(pk=railcar.pk).update(status=Status.CHECKING)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.conclude_checks(railcar_id=railcar.pk, thresholds=quality_thresholds())
    assert not RailcarScore.objects.exists()  # no production model yet: nothing queued

    production_model()
    other = scrap_railcar(2.0)
    Railcar.objects.filter(pk=other.pk).update(status=Status.CHECKING)
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.conclude_checks(railcar_id=other.pk, thresholds=quality_thresholds())

    assert list(RailcarScore.objects.values_list("railcar_id", flat=True)) == [other.pk]
    other.refresh_from_db()
    assert other.status == Status.IN_POOL
    assert other.priority == pytest.approx(RailcarScore.objects.get().uncertainty)


@pytest.mark.django_db
def test_scoring_leaves_a_railcar_put_at_the_front_of_the_pool_at_the_front(admin_user):
    from labeling.front_of_pool import FRONT_PRIORITY, put_at_front

    production_model()
    set_policy(key=RANDOM_PICK_SHARE, value=0.0, actor=admin_user)
    escalated, other = scrap_railcar(0.5, raters=1), scrap_railcar(9.5, raters=1)
    put_at_front(railcar_id=escalated.pk, reason="operator escalation")

    scoring.score_railcars()

    escalated.refresh_from_db()
    assert escalated.priority == FRONT_PRIORITY
    assert RailcarScore.objects.filter(railcar=escalated).exists()
    first = pool.next_assignment(annotator=annotators(1)[0])
    assert first.railcar_id == escalated.pk != other.pk
