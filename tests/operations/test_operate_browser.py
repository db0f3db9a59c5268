"""The operator application in Debian's chromium: an operator watches an unloading's estimate
appear and update on /operate/ by polling, opens it and amends it with a rationale code."""

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from operations import operate_views
from operations.models import OperatorDecision
from tests.operations.operate_factories import estimate, operator_of, railcar_on

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture(autouse=True)
def _no_script_errors(page: Page) -> Iterator[None]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch) -> None:
    monkeypatch.setattr(operate_views, "POLL_MS", 200)


@pytest.fixture
def operator(transactional_db) -> User:
    return operator_of("L4", username="op-lena")


def test_an_operator_sees_the_estimate_update_live_and_amends_it(page: Page, log_in, operator):
    railcar = railcar_on("L4", layers=2)
    hidden = railcar_on("L5")
    log_in(username="op-lena", password="op-lena-pass-1")
    page.goto("/operate/")
    row = page.locator(f'tr[data-railcar="{railcar.pk}"]')
    expect(row).to_contain_text("no estimate yet")
    expect(page.locator(f'tr[data-railcar="{hidden.pk}"]')).to_have_count(0)

    estimate(railcar, contamination_pct=1.8, confidence=0.81, layers_scored=1)
    expect(row.locator(".contamination")).to_have_text("1.8 %")
    expect(row.locator(".layers")).to_have_text("1")
    estimate(railcar, contamination_pct=2.6, confidence=0.9, layers_scored=2,
             quality_flags={"haze": 1})  # fmt: skip
    expect(row.locator(".contamination")).to_have_text("2.6 %")
    expect(row.locator(".confidence")).to_have_text("0.90")
    expect(row.locator(".flags")).to_have_text("haze ×1")

    row.get_by_role("link", name=railcar.real_id).click()
    expect(page.locator("#estimate-contamination")).to_contain_text("2.6 %")
    page.get_by_label("Action").select_option("amend")
    page.get_by_label("Contamination (%)").fill("3.1")
    page.get_by_label("Rationale").select_option("visible_inclusions")
    page.get_by_label("Note").fill("plastic sheet on top")
    page.get_by_role("button", name="Record decision").click()

    expect(page.locator(".messages")).to_contain_text("You amended the estimate.")
    expect(page.locator("#decisions")).to_contain_text("plastic sheet on top")
    decision = OperatorDecision.objects.get()
    assert (decision.contamination_pct, decision.rationale_code) == (3.1, "visible_inclusions")
    assert decision.estimate.layers_scored == 2
    page.goto("/operate/")
    expect(row.locator(".decision")).to_contain_text("amend: 3.1 %")
    expect(row.locator(".decision")).to_contain_text("visible_inclusions")
