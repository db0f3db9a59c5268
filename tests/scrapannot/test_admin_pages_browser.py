"""Issue 16 in a browser: policies validated together, both Re-apply buttons asking first with a
dry run, the reopen reason on the case, the audit page, Swagger UI and ReDoc served offline.
Screenshots go to $SCRAPANNOT_SCREENSHOTS when set."""

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, Route, expect

from adjudication import decisions
from adjudication.policies import STD_THRESHOLD
from labeling import pipeline
from scrapannot.policy import set_policy
from tests.adjudication.disputes import disputed_railcar, open_case_of
from tests.adjudication.factories import rated_railcar
from tests.labeling.test_pipeline import synth_railcar

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]


@pytest.fixture
def disputed_case(transactional_db):
    # Committed at once in a transactional test: the aggregation's on_commit work runs then.
    return open_case_of(disputed_railcar())


def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    folder = os.environ.get("SCRAPANNOT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=full_page)


def test_a_maximum_aspect_below_the_minimum_is_refused_on_its_row(page: Page, log_in, admin_user):
    log_in(username="boss", password="boss-pass-1")
    page.goto("/policies/")

    row = page.locator("tr[data-key='quality.max_aspect']")
    row.get_by_label("new value for quality.max_aspect").fill("1.0")
    row.get_by_role("button", name="Save").click()

    row = page.locator("tr[data-key='quality.max_aspect']")
    expect(row.get_by_role("alert")).to_contain_text(
        "quality.min_aspect (1.2) may not be above quality.max_aspect (1.0)"
    )
    expect(row.locator(".current")).to_have_text("2.4")
    shot(page, "policies-error", full_page=False)


def test_reapplying_the_aggregation_policies_shows_a_dry_run_first(
    page: Page, log_in, admin_user, disputed_case
):
    set_policy(key=STD_THRESHOLD, value="50", actor=admin_user)
    log_in(username="boss", password="boss-pass-1")
    page.goto("/adjudication/")

    page.get_by_role("button", name="Re-apply aggregation policies…").click()

    expect(page.get_by_role("heading", name="Re-apply the aggregation policies?")).to_be_visible()
    expect(page.locator("[data-count=final]")).to_have_text("1")
    expect(page.locator("[data-count=changing]")).to_have_text("1")
    shot(page, "reapply-aggregation-confirm")
    page.get_by_role("button", name="Re-apply to 1 railcar(s)").click()
    expect(page.locator(".messages")).to_contain_text("1 became final")


def test_re_judging_the_frames_shows_a_dry_run_first(page: Page, log_in, admin_user, tmp_path):
    railcar = synth_railcar(tmp_path, defect_share=0.5)
    pipeline.check_railcar(railcar_id=railcar.pk)
    set_policy(key="quality.min_mean_luma", value=255, actor=admin_user)
    log_in(username="boss", password="boss-pass-1")
    page.goto("/ops/quality/")

    page.get_by_role("button", name="Re-apply the current thresholds to checked railcars…").click()

    expect(
        page.get_by_role("heading", name="Re-apply the current quality thresholds?")
    ).to_be_visible()
    expect(page.locator("[data-count=railcars]")).to_have_text("1")
    expect(page.locator("[data-count=frames]")).not_to_have_text("0")
    shot(page, "rejudge-quality-confirm")
    page.get_by_role("button", name="Re-apply to 1 railcar(s)").click()
    expect(page.locator(".messages")).to_contain_text("being re-applied")


def test_a_senior_inspector_reads_why_a_case_was_reopened(page: Page, log_in, senior, admin_user):
    railcar, _ = rated_railcar(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"], prefix="rb")
    case = decisions.reopen(railcar_id=railcar.pk, actor=admin_user, reason="soil under snow")
    log_in(username="senior", password="senior-pass-1")
    page.set_viewport_size({"width": 1440, "height": 900})

    page.goto(f"/adjudication/cases/{case.pk}/")

    expect(page.locator("#adj-reopen-note")).to_contain_text("Reopened by boss")
    expect(page.locator("#adj-reopen-note")).to_contain_text("soil under snow")
    # The ratings and consensus are read whole, not through a sliver of their own scroll area.
    top = page.locator(".ws-panel-top")
    assert top.evaluate("el => el.scrollHeight <= el.clientHeight + 1")
    page.locator("#adj-decision").scroll_into_view_if_needed()
    expect(page.locator("#adj-decision")).to_be_visible()
    shot(page, "case-reopen-reason")


def test_the_audit_page_filters_and_shows_payloads_as_json(page: Page, log_in, admin_user):
    set_policy(key="quality.max_haze", value=0.4, actor=admin_user)
    log_in(username="boss", password="boss-pass-1")
    page.goto("/audit/")

    page.get_by_label("Action").select_option("policy.changed")
    page.get_by_role("button", name="Filter").click()

    expect(page.locator("#audit-count")).to_have_text("1 event(s).")
    page.locator("#audit-events summary").first.click()
    expect(page.locator("pre.payload").first).to_contain_text('"key": "quality.max_haze"')
    expect(page.locator("[data-chain=ok]")).to_be_visible()
    shot(page, "audit-filtered")


def test_swagger_ui_and_redoc_render_without_the_internet(
    page: Page, log_in, admin_user, live_server
):
    own_host = urlparse(live_server.url).netloc
    outside: list[str] = []

    def only_the_app(route: Route) -> None:
        if urlparse(route.request.url).netloc == own_host:
            route.continue_()
        else:
            outside.append((route.request.resource_type, route.request.url))
            route.abort()

    page.route("**/*", only_the_app)
    log_in(username="boss", password="boss-pass-1")

    page.get_by_role("navigation").get_by_role("link", name="API docs").click()
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("scrapannot API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    shot(page, "api-swagger")
    page.goto("/api/v1/redoc/")
    expect(page.locator("h1").first).to_contain_text("scrapannot API")
    shot(page, "api-redoc")
    # Only ReDoc's "by Redocly" logo is linked from its bundle; no script, style or font is.
    assert [url for kind, url in outside if kind != "image"] == []


def test_a_refused_page_keeps_the_navigation(page: Page, log_in, annotator):
    log_in(username="ann", password="ann-pass-1")

    page.goto("/audit/")

    expect(page.get_by_role("heading", name="This page is not for your role")).to_be_visible()
    expect(page.locator(".who")).to_have_text("ann")
    page.get_by_role("link", name="Back to your start page").click()
    expect(page.locator("[data-role=annotator]")).to_be_visible()
    page.goto("/audit/")
    shot(page, "forbidden")
