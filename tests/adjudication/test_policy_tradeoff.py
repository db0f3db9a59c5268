"""The policy trade-off on the policies page: what the last weeks' ratings would have given under
each aggregation method and STD threshold, adjudication rate and MAE against gold."""

from datetime import timedelta

import pytest
from django.utils import timezone

from adjudication.policy_tradeoff import tradeoff
from labeling.models import Rating
from tests.adjudication.factories import rated_railcar
from tests.conftest import client_for
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.gold_factories import make_gold, rate_every_gold

pytestmark = pytest.mark.django_db


def _candidate(result: dict, method: str, threshold: float):
    return next(c for c in result["candidates"] if c.method == method and c.threshold == threshold)


@pytest.fixture
def rated(django_capture_on_commit_callbacks):
    raters = annotators(3, prefix="trade")
    with django_capture_on_commit_callbacks(execute=True):
        # Sample STDs 0.0, 0.2, 0.5, 0.75.
        for values in ([5.0, 5.0, 5.0], [5.0, 5.2, 5.4], [5.0, 5.5, 6.0], [5.0, 5.75, 6.5]):
            rated_railcar(values, ["3A"] * 3, raters=raters)
    return raters


def test_each_threshold_shows_its_adjudication_rate_from_stored_ratings(rated):
    result = tradeoff(weeks=8, extra_threshold=0.6)

    thresholds = sorted({c.threshold for c in result["candidates"]})
    assert thresholds == [0.3, 0.4, 0.5, 0.6]
    assert _candidate(result, "mean", 0.4).current
    assert _candidate(result, "mean", 0.3).adjudication_rate == pytest.approx(0.5)
    assert _candidate(result, "mean", 0.4).adjudication_rate == pytest.approx(0.5)
    assert _candidate(result, "mean", 0.5).adjudication_rate == pytest.approx(0.25)
    assert _candidate(result, "mean", 0.6).adjudication_rate == pytest.approx(0.25)
    assert _candidate(result, "mean", 0.4).railcars == 4
    # Without calibrations the calibrated rule reads as the mean.
    assert _candidate(result, "calibrated", 0.4).adjudication_rate == pytest.approx(0.5)


def test_ratings_older_than_the_window_are_left_out(rated):
    Rating.objects.update(submitted_at=timezone.now() - timedelta(weeks=10))
    assert _candidate(tradeoff(weeks=8), "mean", 0.4).railcars == 0
    assert _candidate(tradeoff(weeks=12), "mean", 0.4).railcars == 4


def test_gold_railcars_give_the_mae_of_the_labels_the_rule_lets_through():
    people = annotators(6, prefix="g")
    for _ in range(60):
        pool_railcar(raters=3, with_files=False)
    make_gold(pool_railcar(with_files=False), pct="10.0")
    # Two panels of three: the first agrees and reads 0.5 high, the second spreads too much.
    readings = [10.4, 10.5, 10.6, 9.0, 10.0, 11.0]
    rate_every_gold(people, lambda k, truth: readings[k])

    result = tradeoff(weeks=8)

    mean = _candidate(result, "mean", 0.4)
    assert mean.gold_panels == 2 and mean.gold_final == 1
    assert mean.gold_adjudication_rate == pytest.approx(0.5)
    assert mean.gold_mae == pytest.approx(0.5)
    assert _candidate(result, "mean", 0.3).railcars == 0  # gold railcars are not ordinary ones


def test_the_policies_page_shows_the_tradeoff_to_admins_only(rated, admin_user, senior, annotator):
    page = client_for(admin_user).get("/policies/?weeks=4&threshold=0.6")

    assert page.status_code == 200
    text = page.content.decode()
    assert 'id="tradeoff"' in text and "(current)" in text and "0.6" in text
    assert client_for(senior).get("/policies/").status_code == 403
    assert client_for(annotator).get("/policies/").status_code == 403


@pytest.mark.parametrize("params", ["?weeks=abc", "?weeks=-3&threshold=x", "?threshold=1e9"])
def test_bad_tradeoff_parameters_fall_back_to_defaults(rated, admin_user, params):
    assert client_for(admin_user).get(f"/policies/{params}").status_code == 200
