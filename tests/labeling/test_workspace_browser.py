"""The annotation workspace in Debian's chromium: an annotator takes a railcar, excludes a frame,
makes masks with clicks and a box, rates it and submits; three annotators share a railcar under
three pseudonyms and a fourth gets nothing."""

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Browser, Page, expect

from labeling import pool
from labeling.models import Assignment, Frame, FrameExclusion, Mask, Railcar, Rating
from scrapannot.models import AuditEvent
from tests.labeling.factories import annotators, pool_railcar

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

PASSWORD = "x-pass-1"  # what tests.labeling.factories.annotators gives everyone
WORKSPACE_URL = re.compile(r"/annotate/[0-9a-f-]{36}/$")


@pytest.fixture(autouse=True)
def _no_script_errors(page: Page) -> Iterator[None]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


@pytest.fixture
def railcar(transactional_db) -> Railcar:
    return pool_railcar(layers=2, frames_per_layer=2, raters=3)


@pytest.fixture
def raters(transactional_db) -> list[User]:
    return annotators(4)


@pytest.fixture
def new_page(browser: Browser, live_server) -> Iterator:
    """More browsers, one per annotator: `new_page()` gives a fresh context's page."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(base_url=live_server.url)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page: Page, user: User) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def take_next_railcar(page: Page) -> None:
    page.goto("/")
    page.get_by_role("link", name="Your queue").click()
    page.get_by_role("button", name="Next railcar").click()
    page.wait_for_load_state()


def open_workspace(page: Page, user: User) -> Assignment:
    """Log in, take the next railcar, wait until its first frame is drawn."""
    log_in(page, user)
    take_next_railcar(page)
    expect(page).to_have_url(WORKSPACE_URL)
    expect(page.locator("#ws-canvas")).to_have_attribute("data-frame", re.compile(".+"))
    return Assignment.objects.get(annotator=user, status=Assignment.Status.ACTIVE)


def frames_in_order(railcar: Railcar) -> list[Frame]:
    return list(railcar.frames.order_by("layer__index", "index"))


def screen_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """Where the frame pixel (x, y) is on the page, from the viewer's current transform."""
    canvas = page.locator("#ws-canvas")
    box = canvas.bounding_box()
    assert box is not None
    scale, ox, oy = (float(canvas.get_attribute(f"data-{k}") or 0) for k in ("scale", "ox", "oy"))
    return box["x"] + ox + x * scale, box["y"] + oy + y * scale


def click_frame(page: Page, x: float, y: float, *, modifiers: list | None = None) -> None:
    canvas = page.locator("#ws-canvas")
    box = canvas.bounding_box()
    assert box is not None
    sx, sy = screen_point(page, x, y)
    canvas.click(position={"x": sx - box["x"], "y": sy - box["y"]}, modifiers=modifiers or [])


def drag_box(page: Page, x0: float, y0: float, x1: float, y1: float) -> None:
    page.mouse.move(*screen_point(page, x0, y0))
    page.mouse.down()
    page.mouse.move(*screen_point(page, x1, y1), steps=6)
    page.mouse.up()


def accept_mask(page: Page, count: int) -> None:
    page.keyboard.press("Enter")
    expect(page.locator("#ws-masks li")).to_have_count(count)


def actions_of(user: User) -> list[str]:
    return list(AuditEvent.objects.filter(actor=user).values_list("action", flat=True))


def test_an_annotator_excludes_a_frame_makes_a_mask_and_submits_a_rating(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    first = raters[0]
    assignment = open_workspace(page, first)
    keyframe, second_frame = frames_in_order(railcar)[:2]
    expect(page.locator("#ws-pseudonym")).to_have_text(assignment.pseudonym)
    expect(page.locator("#ws-where")).to_contain_text("Layer 1 of 2 · frame 1 of 2")

    # Exclude the layer's second frame with the keyboard: n, then x and the code's number.
    page.keyboard.press("n")
    expect(page.locator("#ws-canvas")).to_have_attribute("data-frame", str(second_frame.uid))
    page.keyboard.press("x")
    page.keyboard.press("1")
    expect(page.locator("#ws-excluded")).to_contain_text("blur")
    expect(page.locator("#ws-excluded-banner")).to_be_visible()

    # Back on the keyframe: a box, a point on the object, a point off it; Enter keeps the mask.
    page.keyboard.press("p")
    expect(page.locator("#ws-canvas")).to_have_attribute("data-frame", str(keyframe.uid))
    drag_box(page, 20, 10, 70, 44)
    click_frame(page, 45, 27)
    click_frame(page, 62, 40, modifiers=["Shift"])
    expect(page.locator("#ws-proposal")).to_contain_text("Proposed")
    accept_mask(page, 1)
    expect(page.locator(".strip-layer.current .strip-marks")).to_contain_text("1 excluded · 1 mask")

    page.keyboard.press("c")
    page.keyboard.type("12.5")
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    page.keyboard.press("3")
    expect(page.locator("input[name=grade][value='3AH']")).to_be_checked()
    page.keyboard.press("Control+Enter")
    expect(page.locator("#ws-done")).to_be_visible()
    expect(page.locator("#ws-done-summary")).to_contain_text("12.5 %, grade 3AH")

    exclusion = FrameExclusion.objects.get(assignment=assignment)
    assert (exclusion.frame, exclusion.code) == (second_frame, "blur")
    mask = Mask.objects.get(assignment=assignment)
    assert mask.frame == keyframe
    assert mask.area > 0
    assert mask.prompts["labels"] == [1, 0]
    assert mask.prompts["points"] == [[45.0, 27.0], [62.0, 40.0]]
    assert mask.prompts["box"] == pytest.approx([20, 10, 70, 44], abs=0.6)
    rating = Rating.objects.get(assignment=assignment)
    assert (str(rating.contamination_pct), rating.grade) == ("12.5", "3AH")
    assert rating.seconds_spent >= 1
    assert {"frame.excluded", "mask.saved", "rating.submitted"} <= set(actions_of(first))
    saved = AuditEvent.objects.get(action="mask.saved", actor=first)
    assert saved.payload["prompts"]["box"] is not None


def test_three_annotators_share_a_railcar_under_three_pseudonyms_and_a_fourth_gets_none(
    page: Page, new_page, railcar: Railcar, raters: list[User]
) -> None:
    pages = [page, new_page(), new_page()]
    pseudonyms = []
    for rater_page, rater in zip(pages, raters[:3], strict=True):
        assignment = open_workspace(rater_page, rater)
        assert assignment.railcar_id == railcar.pk
        expect(rater_page.locator("#ws-pseudonym")).to_have_text(assignment.pseudonym)
        pseudonyms.append(assignment.pseudonym)

    fourth = new_page()
    log_in(fourth, raters[3])
    take_next_railcar(fourth)

    assert len(set(pseudonyms)) == 3
    expect(fourth.locator("#queue-empty")).to_contain_text("Nothing to rate right now")
    assert not Assignment.objects.filter(annotator=raters[3]).exists()


def test_a_double_click_on_submit_and_a_retried_request_record_one_rating(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    assignment = open_workspace(page, raters[0])
    page.locator("#ws-contamination").fill("7.5")
    page.get_by_label("3A1").check()

    page.locator("#ws-submit").dblclick()
    expect(page.locator("#ws-done")).to_be_visible()
    # The same request again from the page's session, as a retry after a lost answer would be.
    repeat = page.evaluate(
        """async (url) => {
            const token = document.querySelector("input[name=csrfmiddlewaretoken]").value;
            const response = await fetch(url, {
                method: "POST",
                headers: {"Content-Type": "application/json", "X-CSRFToken": token},
                body: JSON.stringify({contamination_pct: "7.5", grade: "3A1", seconds_spent: 3}),
            });
            return {status: response.status, body: await response.json()};
        }""",
        f"/api/v1/assignments/{assignment.uid}/rating/",
    )

    assert repeat == {"status": 200, "body": {"contamination_pct": "7.5", "grade": "3A1"}}
    assert Rating.objects.filter(railcar=railcar).count() == 1
    assert AuditEvent.objects.filter(action="rating.submitted").count() == 1


def test_the_time_spent_counts_only_while_the_tab_is_visible(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    started = time.monotonic()
    assignment = open_workspace(page, raters[0])
    set_visibility = """(state) => {
        Object.defineProperty(document, "visibilityState", {configurable: true, get: () => state});
        document.dispatchEvent(new Event("visibilitychange"));
    }"""

    page.evaluate(set_visibility, "hidden")
    page.wait_for_timeout(3_000)
    page.evaluate(set_visibility, "visible")
    page.locator("#ws-contamination").fill("1")
    page.locator("input[name=grade][value='3A']").check()
    page.locator("#ws-submit").click()
    expect(page.locator("#ws-done")).to_be_visible()
    elapsed = time.monotonic() - started

    spent = Rating.objects.get(assignment=assignment).seconds_spent
    assert 0 <= spent <= elapsed - 2


def test_several_masks_on_one_frame_with_undo_and_delete(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    assignment = open_workspace(page, raters[0])

    click_frame(page, 20, 20)
    accept_mask(page, 1)
    click_frame(page, 70, 30)
    click_frame(page, 80, 40)
    page.keyboard.press("z")  # the second point goes, the first stays
    accept_mask(page, 2)
    assert Mask.objects.filter(assignment=assignment).count() == 2
    page.keyboard.press("Delete")  # the mask just accepted is the selected one

    expect(page.locator("#ws-masks li")).to_have_count(1)
    kept = Mask.objects.get(assignment=assignment)
    assert kept.prompts["points"] == [[20.0, 20.0]]
    assert AuditEvent.objects.filter(action="mask.deleted", actor=raters[0]).count() == 1


def test_layers_and_frames_are_reached_with_the_arrow_keys_and_the_filmstrip(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    open_workspace(page, raters[0])
    frames = frames_in_order(railcar)
    canvas = page.locator("#ws-canvas")

    page.keyboard.press("ArrowDown")
    expect(canvas).to_have_attribute("data-frame", str(frames[2].uid))
    expect(page.locator("#ws-where")).to_contain_text("Layer 2 of 2 · frame 1 of 2 (keyframe)")
    page.keyboard.press("ArrowRight")
    expect(canvas).to_have_attribute("data-frame", str(frames[3].uid))
    page.keyboard.press("ArrowUp")
    expect(canvas).to_have_attribute("data-frame", str(frames[0].uid))
    page.locator(f".strip-key[data-frame='{frames[2].uid}']").click()
    expect(canvas).to_have_attribute("data-frame", str(frames[2].uid))


def test_a_lost_lease_stops_the_work_with_a_way_back_to_the_queue(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    assignment = open_workspace(page, raters[0])
    pool.release_assignment(uid=assignment.uid, annotator=raters[0], reason="test: lease gone")

    page.keyboard.press("x")
    page.keyboard.press("2")

    expect(page.locator("#ws-gone")).to_be_visible()
    assert not FrameExclusion.objects.filter(assignment=assignment).exists()
    page.get_by_role("link", name="Back to the queue").click()
    expect(page.locator("#take-next")).to_be_visible()


def test_the_help_overlay_opens_with_a_question_mark_and_lists_the_shortcuts(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    open_workspace(page, raters[0])

    page.keyboard.press("?")

    help_overlay = page.locator("#ws-help")
    expect(help_overlay).to_be_visible()
    for text in ["accept the proposed mask", "exclude the frame", "next frame", "choose the grade"]:
        expect(help_overlay).to_contain_text(text)
    expect(help_overlay.locator("kbd", has_text="Ctrl-Enter")).to_be_visible()
    page.keyboard.press("Escape")
    expect(help_overlay).to_be_hidden()


def test_the_workspace_never_shows_the_real_railcar(
    page: Page, railcar: Railcar, raters: list[User]
) -> None:
    # A capture date far from today's, so that a lease's expiry cannot look like a leak.
    start = datetime(2019, 3, 7, 6, 41, tzinfo=UTC)
    Railcar.objects.filter(pk=railcar.pk).update(
        unloading_started_at=start, unloading_ended_at=start + timedelta(minutes=5)
    )
    Frame.objects.filter(railcar=railcar).update(captured_at=start)
    railcar.refresh_from_db()
    assignment = open_workspace(page, raters[0])
    detail = page.evaluate(
        "async (url) => await (await fetch(url)).text()", f"/api/v1/assignments/{assignment.uid}/"
    )
    secrets = [
        railcar.real_id, railcar.camera, railcar.fingerprint, start.date().isoformat(),
        start.strftime("%d.%m.%Y"), start.strftime("%b. %d, %Y"), start.strftime("%B %d, %Y"),
    ]  # fmt: skip

    for shown in [page.content(), page.title(), detail]:
        for secret in secrets:
            assert secret not in shown
        assert not re.search(rf"\b{railcar.line}\b", shown)
    assert assignment.pseudonym in page.title()
