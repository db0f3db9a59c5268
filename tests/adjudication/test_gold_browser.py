"""The gold page in a browser: an admin records gold truth with its source through the form, a
senior inspector reads the raters' scores and a drift chart per rater."""

from datetime import UTC, datetime, timedelta

import pytest

from labeling.models import GoldRailcar, Rating
from scrapannot.models import AuditEvent
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.gold_factories import rate_every_gold

pytest_plugins = ["tests.browser_fixtures"]

URL = "/adjudication/gold/"


@pytest.mark.browser
def test_an_admin_records_gold_truth_and_a_senior_reads_the_drift_in_chromium(
    page, log_in, admin_user, senior
):
    railcars = [pool_railcar(with_files=False) for _ in range(3)]
    for _ in range(40):
        pool_railcar(with_files=False)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(username="boss", password="boss-pass-1")
    for k, railcar in enumerate(railcars):
        page.goto(URL)
        page.fill("#gold-import input[name=railcar]", railcar.real_id)
        page.fill("#gold-import input[name=contamination_pct]", f"{4 + 2 * k}.0")
        page.select_option("#gold-import select[name=source]", "lab_analysis")
        page.fill("#gold-import input[name=reference]", f"LAB-{k}")
        page.click("#gold-import button")
        page.wait_for_load_state()
    assert GoldRailcar.objects.count() == 3
    assert AuditEvent.objects.filter(action="gold.imported").count() == 3
    assert page.locator("#gold-railcars tbody tr").count() == 3

    people = annotators(2, prefix="drift")
    rate_every_gold(people, lambda k, truth: truth + (1.0 if k == 0 else 0.0))
    # One rating a week apart each, so that the drift chart has points to join.
    for n, rating in enumerate(Rating.objects.order_by("id")):
        Rating.objects.filter(pk=rating.pk).update(
            submitted_at=datetime(2026, 9, 7, tzinfo=UTC) + timedelta(weeks=n % 3)
        )

    page.context.clear_cookies()
    log_in(username="senior", password="senior-pass-1")
    page.goto(URL)

    rows = page.locator("#gold-scores tbody tr")
    assert rows.count() == 2
    assert "1.00" in rows.first.inner_text()  # drift0 reads 1 point high
    assert page.locator("#drift svg.chart").count() == 2
    assert page.locator("#gold-import").count() == 0
    assert errors == []
