"""The guidelines in Debian's chromium: an admin publishes them on the editor, an annotator opens
them in the workspace with one key."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from labeling.models import Guideline
from scrapannot.roles import Role
from tests.conftest import user_with_roles
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.test_workspace_browser import log_in, new_page, open_workspace
from tests.labeling.test_workspace_exits_browser import shot

pytest_plugins = ["tests.browser_fixtures"]
__all__ = ["new_page"]  # the fixture, from the workspace's browser tests
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

TEXT = "Grade 3AH: heavy melting scrap.\n\nContamination: the share of the load that is not steel."


@pytest.fixture(autouse=True)
def _no_script_errors(page: Page) -> Iterator[None]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


def test_an_admin_publishes_guidelines_and_an_annotator_opens_them_with_i(
    page: Page, new_page, transactional_db
) -> None:
    admin = user_with_roles("boss", Role.ADMIN)
    admin.set_password("x-pass-1")
    admin.save()
    log_in(page, admin)
    page.get_by_role("link", name="Guidelines").click()
    page.get_by_label("Text").fill(TEXT)
    page.get_by_role("button", name="Publish a new version").click()
    expect(page.locator("#guidelines-current")).to_contain_text("version 1")
    shot(page, "guidelines-editor")

    pool_railcar()
    (rater,) = annotators(1)
    annotator_page = new_page()
    open_workspace(annotator_page, rater)
    annotator_page.keyboard.press("i")

    panel = annotator_page.locator("#ws-guidelines")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("Grade 3AH: heavy melting scrap.")
    expect(panel).to_contain_text("Version 1")
    shot(annotator_page, "guidelines-panel")
    annotator_page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert Guideline.objects.get().author == admin


def test_the_guidelines_panel_says_when_there_are_none_yet(page: Page, transactional_db) -> None:
    pool_railcar()
    (rater,) = annotators(1)
    open_workspace(page, rater)

    page.get_by_role("button", name="Guidelines").click()

    expect(page.locator("#ws-guidelines")).to_contain_text("No guidelines yet")
