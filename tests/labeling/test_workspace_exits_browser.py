"""The workspace's ways out and its honesty about state, in Debian's chromium: a release with a
reason, a railcar with every frame excluded, Back after a rating, the lease's countdown and end."""

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from labeling.models import Assignment, Railcar, Rating
from scrapannot.models import AuditEvent
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.test_workspace_browser import WORKSPACE_URL, open_workspace

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

# Screenshots for the review, when asked for: SCRAPANNOT_SCREENSHOTS=/tmp/uxa
SHOTS = Path(p) if (p := __import__("os").environ.get("SCRAPANNOT_SCREENSHOTS")) else None


@pytest.fixture(autouse=True)
def _no_script_errors(page: Page) -> Iterator[None]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


@pytest.fixture
def rater(transactional_db) -> User:
    return annotators(1)[0]


def shot(page: Page, name: str) -> None:
    if SHOTS:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


def set_lease(assignment: Assignment, seconds: float) -> None:
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() + timedelta(seconds=seconds)
    )


def test_an_annotator_gives_a_railcar_back_with_a_reason_code_and_a_note(
    page: Page, rater: User
) -> None:
    railcar = pool_railcar(raters=1)
    assignment = open_workspace(page, rater)

    page.get_by_role("button", name="Release…").click()
    dialog = page.locator("#ws-release")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Wrong railcar or not a loaded railcar").check()
    dialog.get_by_label("Note", exact=True).fill("no load visible")
    shot(page, "release-dialog")
    dialog.get_by_role("button", name="Release the railcar").click()

    expect(page.locator("#ws-gone")).to_be_visible()
    expect(page.locator("#ws-gone-title")).to_have_text("You gave this railcar back")
    assignment.refresh_from_db()
    assert (assignment.status, assignment.release_reason) == (
        "released",
        "wrong_railcar: no load visible",
    )
    event = AuditEvent.objects.get(action="assignment.released")
    assert event.actor == rater and event.payload["reason"] == "wrong_railcar"
    assert Railcar.objects.get(pk=railcar.pk).open_slots == 1


def test_a_railcar_with_every_frame_excluded_offers_a_release_instead_of_a_rating(
    page: Page, rater: User
) -> None:
    pool_railcar(layers=1, frames_per_layer=2)
    assignment = open_workspace(page, rater)

    page.keyboard.press("x")
    page.keyboard.press("1")
    expect(page.locator("#ws-excluded")).to_be_visible()
    page.keyboard.press("n")
    page.keyboard.press("x")
    page.keyboard.press("1")
    expect(page.locator(".strip-marks")).to_contain_text("2 excluded")
    expect(page.locator("#ws-nothing-left")).to_be_visible()
    expect(page.locator("#ws-submit")).to_be_disabled()
    shot(page, "every-frame-excluded")
    page.get_by_role("button", name="Release: frames unusable").click()
    dialog = page.locator("#ws-release")
    expect(dialog.get_by_label("The frames are unusable")).to_be_checked()
    dialog.get_by_role("button", name="Release the railcar").click()

    expect(page.locator("#ws-gone")).to_be_visible()
    assignment.refresh_from_db()
    assert (assignment.status, assignment.release_reason) == ("released", "frames_unusable")
    assert not Rating.objects.exists()


def test_including_a_frame_again_makes_the_railcar_ratable_again(page: Page, rater: User) -> None:
    pool_railcar(layers=1, frames_per_layer=1)
    open_workspace(page, rater)

    page.keyboard.press("x")
    page.keyboard.press("2")
    expect(page.locator("#ws-nothing-left")).to_be_visible()
    page.keyboard.press("x")

    expect(page.locator("#ws-nothing-left")).to_be_hidden()
    expect(page.locator("#ws-submit")).to_be_enabled()


def test_back_after_a_rating_shows_it_recorded_and_never_an_editable_form(
    page: Page, rater: User
) -> None:
    pool_railcar()
    pool_railcar()
    open_workspace(page, rater)
    rated_url = page.url
    page.locator("#ws-contamination").fill("4.5")
    page.get_by_label("3A1").check()
    page.locator("#ws-submit").click()
    expect(page.locator("#ws-done")).to_be_visible()
    page.get_by_role("button", name="Next railcar").click()
    expect(page).not_to_have_url(rated_url)
    expect(page).to_have_url(WORKSPACE_URL)

    page.go_back()

    expect(page).to_have_url(rated_url)
    expect(page.locator("#ws-done")).to_be_visible()
    expect(page.locator("#ws-done-already")).to_have_text(re.compile("You already rated"))
    expect(page.locator("#ws-done-summary")).to_contain_text("4.5 %, grade 3A1")
    expect(page.locator("#ws-gone")).to_be_hidden()
    expect(page.locator("#ws-submit")).to_be_disabled()
    expect(page.locator("#ws-contamination")).to_be_disabled()
    expect(page.locator("#ws-contamination")).to_have_value("4.5")
    shot(page, "back-after-rating")
    assert Rating.objects.count() == 1


def test_the_lease_counts_down_and_warns_two_minutes_before_it_ends(
    page: Page, rater: User
) -> None:
    pool_railcar()
    assignment = open_workspace(page, rater)
    expect(page.locator("#ws-lease-left")).to_have_text(re.compile(r"^(29|30):\d\d left$"))
    expect(page.locator("#ws-lease-warning")).to_be_hidden()

    set_lease(assignment, 100)
    page.reload()

    expect(page.locator("#ws-lease-left")).to_have_text(re.compile(r"^1:[34]\d left$"))
    expect(page.locator("#ws-lease-warning")).to_be_visible()
    expect(page.locator("#ws-lease-warning")).to_contain_text("The lease ends in 2 minutes")
    shot(page, "lease-warning")


def test_when_the_lease_ends_the_page_says_so_and_saves_nothing_more(
    page: Page, rater: User
) -> None:
    pool_railcar()
    assignment = open_workspace(page, rater)
    set_lease(assignment, 3)
    page.reload()
    expect(page.locator("#ws-canvas")).to_have_attribute("data-frame", re.compile(".+"))

    expect(page.locator("#ws-gone")).to_be_visible(timeout=10_000)
    expect(page.locator("#ws-gone-title")).to_have_text("The lease on this railcar has ended")
    shot(page, "lease-ended")


def test_a_rating_sent_after_the_lease_ended_is_refused_and_the_page_says_why(
    page: Page, rater: User
) -> None:
    pool_railcar()
    assignment = open_workspace(page, rater)
    page.locator("#ws-contamination").fill("2")
    page.get_by_label("3A1").check()
    set_lease(assignment, -1)  # the lease ends while the page still counts on it

    page.locator("#ws-submit").click()

    expect(page.locator("#ws-gone")).to_be_visible()
    expect(page.locator("#ws-gone-title")).to_have_text("The lease on this railcar has ended")
    assert not Rating.objects.exists()
