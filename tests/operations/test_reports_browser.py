"""The report in a browser: an operator reads an amended, escalated unloading, opens the
printable page (what paper shows) and downloads the day's CSV."""

import csv
import datetime as dt
import io

import pytest
from playwright.sync_api import Page, expect

from tests.operations.report_factories import amend, escalate, estimate, operator_of, unloading

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


@pytest.mark.browser
def test_an_operator_reads_prints_and_downloads_the_report(page: Page, log_in, live_server):
    started = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
    railcar = unloading(line="L1", started=started, real_id="RC-40404040")
    estimate(railcar, pct=4.26, grade="3A1")
    operator = operator_of("olga", "L1")
    amend(railcar, operator, pct="6.5", grade="3AH", note="soil on layer 2")
    escalate(railcar)

    log_in(username="olga", password="olga-pass-1")
    page.goto(f"/operate/unloadings/{railcar.pk}/report/")

    expect(page.locator("#report-railcar")).to_contain_text("RC-40404040")
    expect(page.locator("#report-contamination")).to_contain_text("4.3 %")
    expect(page.locator("#report-decision")).to_contain_text("amend")
    expect(page.locator("#report-decision")).to_contain_text("6.5 %")
    expect(page.locator("#report-escalation")).to_contain_text("contamination_above")

    page.click("#report-print")
    expect(page).to_have_url(f"{live_server.url}/operate/unloadings/{railcar.pk}/report/?print=1")
    page.emulate_media(media="print")
    expect(page.locator(".no-print")).to_be_hidden()
    expect(page.locator("#report-grade")).to_contain_text("3A1")
    page.emulate_media(media="screen")
    page.go_back()

    with page.expect_download() as download:
        page.get_by_role("link", name="CSV of the day").click()
    assert download.value.suggested_filename == "reports-2026-12-01.csv"
    (row,) = csv.DictReader(io.StringIO(download.value.path().read_text(encoding="utf-8")))
    assert row["real_id"] == "RC-40404040" and row["decision_grade"] == "3AH"
