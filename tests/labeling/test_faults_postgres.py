"""PostgreSQL of its own restarted under ingest load and under rating load, with gunicorn, a
worker and a Redis of their own: no 500 once it is back, no railcar stuck after the reconciler's
period, none stored twice, no rating lost."""

from pathlib import Path

import pytest

from tests.fault_scenarios import postgres_restart, postgres_restart_under_rating_load
from tests.fault_stack import Stack


@pytest.fixture
def stack(tmp_path: Path):
    stack = Stack(tmp_path)
    stack.start()
    yield stack
    stack.stop()


def test_a_postgresql_restart_under_ingest_load_leaves_nothing_stuck_and_no_500_after(stack):
    report = postgres_restart(stack)

    assert report.requests > 4
    assert report.server_errors_after_recovery == 0
    # While it is down, clients are told to retry, not that the server broke.
    assert set(report.statuses) <= {201, 503}
    assert report.stuck == 0
    assert report.duplicates == 0
    assert stack.audited("quality.checked") == sum(stack.statuses().values())


def test_a_postgresql_restart_under_rating_load_loses_no_rating_and_leaves_nothing_stuck(stack):
    report = postgres_restart_under_rating_load(stack)

    assert report.ratings_answered > 0
    assert report.server_errors_after_recovery == 0
    assert set(report.statuses) <= {200, 201, 204, 503}, report.statuses
    # Every rating answered 201 is stored, once; none beyond the raters a railcar needs.
    assert report.ratings_stored == report.ratings_answered
    assert report.duplicates == 0
    assert report.stuck == 0  # the railcars completed meanwhile were aggregated
