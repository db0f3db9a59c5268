"""The first run in a browser: each demo account's role. (The demo command and accounts:
tests/operations/test_demo.py.)"""

import io
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Page, expect

from operations.demo import DEMO_PASSWORD, ensure_demo_users
from tests.labeling.unloadings import named_layers_unloading

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = pytest.mark.usefixtures("fast_password_hashing")


# --- each role in a browser ------------------------------------------------------------------

ROLE_CARDS = [("annotator1", "annotator"), ("senior1", "senior"), ("admin1", "admin")]


@pytest.fixture
def demo_users(transactional_db) -> None:
    ensure_demo_users()


def role_cards(page: Page) -> list[str | None]:
    return [card.get_attribute("data-role") for card in page.locator("[data-role]").all()]


@pytest.mark.browser
@pytest.mark.parametrize(("username", "card"), ROLE_CARDS)
def test_each_role_lands_on_a_page_with_its_own_card_only(
    page: Page, log_in, live_server, demo_users: None, username: str, card: str
) -> None:
    log_in(username=username, password=DEMO_PASSWORD)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator(".who")).to_have_text(username)
    assert role_cards(page) == [card]


@pytest.mark.browser
def test_the_admin_reaches_the_audit_trail_and_the_railcars_in_the_django_admin(
    page: Page, log_in, live_server, demo_users: None, tmp_path: Path
) -> None:
    call_command("ingest", named_layers_unloading().write(tmp_path / "u1"), stdout=io.StringIO())
    log_in(username="admin1", password=DEMO_PASSWORD)

    page.locator("[data-role=admin]").get_by_role("link", name="Audit trail").click()
    expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
    expect(page.locator("[data-chain=ok]")).to_contain_text("Chain verified")
    expect(page.locator("table.grid")).to_contain_text("unloading.ingested")

    page.goto("/")
    page.locator("[data-role=admin]").get_by_role("link", name="Railcars").click()
    expect(page).to_have_url(f"{live_server.url}/ops/railcars/")
    page.get_by_role("link", name="RC-58231774").click()
    expect(page.get_by_role("heading", name="RC-58231774")).to_be_visible()
    expect(page.locator("body")).to_contain_text("unloading.ingested")


@pytest.mark.browser
def test_an_annotator_is_refused_the_audit_trail(page: Page, log_in, demo_users: None) -> None:
    log_in(username="annotator1", password=DEMO_PASSWORD)

    response = page.goto("/audit/")

    assert response is not None and response.status == 403
    expect(page.get_by_role("link", name="Audit trail")).to_have_count(0)


@pytest.mark.browser
def test_logging_out_ends_the_session(page: Page, log_in, demo_users: None) -> None:
    log_in(username="senior1", password=DEMO_PASSWORD)

    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    assert "/accounts/login/" in page.url
    page.goto("/")

    assert "/accounts/login/?next=/" in page.url
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


@pytest.mark.browser
def test_a_wrong_password_shows_an_error_and_keeps_the_user_out(
    page: Page, log_in, demo_users: None
) -> None:
    log_in(username="admin1", password="not-the-password")

    expect(page.locator(".error")).to_contain_text("didn't match")
    assert "/accounts/login/" in page.url
    assert role_cards(page) == []
