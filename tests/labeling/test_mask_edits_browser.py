"""Masks in the workspace, in chromium: a second click on the selected mask keeps it selected, an
accepted mask is corrected with more clicks (keeping its inclusion kind) or with the brush and the
eraser, and active time is one clock across the tabs of an assignment."""

import os
import re
import time
from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from labeling.models import Mask, Railcar, Rating
from scrapannot.models import AuditEvent
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.test_workspace_browser import (
    WORKSPACE_URL,
    accept_mask,
    click_frame,
    drag_box,
    open_workspace,
    screen_point,
)

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

SCREENS = os.environ.get("SCRAPANNOT_SCREENS", "")


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
def rater(transactional_db) -> User:
    return annotators(1)[0]


def test_a_second_click_on_the_selected_mask_keeps_it_selected_for_delete(
    page: Page, railcar: Railcar, rater: User
) -> None:
    assignment = open_workspace(page, rater)
    click_frame(page, 20, 20)
    accept_mask(page, 1)
    click_frame(page, 70, 30)
    accept_mask(page, 2)
    first = page.locator(".ws-mask").first

    first.click()
    first.click()  # used to deselect it, and Delete then said "select a mask"

    expect(first).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("Delete")
    expect(page.locator("#ws-masks li")).to_have_count(1)
    kept = Mask.objects.get(assignment=assignment)
    assert kept.prompts["points"] == [[70.0, 30.0]]


def test_an_accepted_mask_gets_a_kind_and_is_corrected_with_a_subtracting_click(
    page: Page, railcar: Railcar, rater: User
) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    assignment = open_workspace(page, rater)
    drag_box(page, 20, 10, 70, 44)
    click_frame(page, 45, 27)
    accept_mask(page, 1)
    mask = Mask.objects.get(assignment=assignment)
    assert mask.kind == "other"

    page.get_by_label("Kind of mask 1").select_option("wood")
    expect(page.locator("#ws-status")).to_contain_text("wood")
    page.get_by_role("button", name="Correct mask 1").click()
    expect(page.locator("#ws-proposal")).to_contain_text("Correcting mask 1")
    click_frame(page, 60, 38, modifiers=["Shift"])
    expect(page.locator("#ws-proposal")).to_contain_text(re.compile(r"now [\d,]+ px"))
    if SCREENS:
        page.screenshot(path=f"{SCREENS}/workspace-mask-correction.png")
    page.keyboard.press("Enter")
    expect(page.locator("#ws-status")).to_contain_text("Mask corrected")

    corrected = Mask.objects.get(assignment=assignment)
    assert corrected.pk == mask.pk and corrected.kind == "wood"
    assert corrected.prompts["labels"] == [1, 0]
    assert corrected.prompts["points"][-1] == [60.0, 38.0]
    changes = AuditEvent.objects.filter(action="mask.changed", actor=rater).order_by("id")
    assert [e.payload["after"]["kind"] for e in changes] == ["wood", "wood"]
    assert changes.last().payload["prompts"]["labels"] == [1, 0]
    expect(page.get_by_label("Kind of mask 1")).to_have_value("wood")


def test_active_time_is_one_clock_across_two_tabs_of_the_assignment(
    page: Page, railcar: Railcar, rater: User
) -> None:
    started = time.monotonic()
    assignment = open_workspace(page, rater)
    url = page.url
    assert WORKSPACE_URL.search(url)
    page.wait_for_timeout(3_000)

    second = page.context.new_page()
    second.goto(url)
    expect(second.locator("#ws-canvas")).to_have_attribute("data-frame", re.compile(".+"))
    page.close()  # the first tab's time must not be lost with it
    second.wait_for_timeout(1_500)
    second.locator("#ws-contamination").fill("1")
    second.locator("input[name=grade][value='3A']").check()
    second.locator("#ws-submit").click()
    expect(second.locator("#ws-done")).to_be_visible()
    elapsed = time.monotonic() - started

    spent = Rating.objects.get(assignment=assignment).seconds_spent
    # Both tabs' time, counted once (they were open together for a moment).
    assert 4 <= spent <= elapsed + 1, (spent, elapsed)


def paint_stroke(page: Page, points: list[tuple[float, float]]) -> None:
    page.mouse.move(*screen_point(page, *points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*screen_point(page, *point), steps=4)
    page.mouse.up()


def test_an_accepted_mask_is_corrected_with_the_brush_and_the_eraser(
    page: Page, railcar: Railcar, rater: User
) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    assignment = open_workspace(page, rater)
    drag_box(page, 20, 10, 50, 40)
    click_frame(page, 35, 25)
    accept_mask(page, 1)
    before = Mask.objects.get(assignment=assignment)

    page.get_by_role("button", name="Correct mask 1").click()
    page.get_by_role("button", name="Brush").click()
    paint_stroke(page, [(80, 10), (80, 45)])  # a stripe well away from the mask
    expect(page.locator("#ws-proposal")).to_contain_text("with the brush")
    if SCREENS:
        page.screenshot(path=f"{SCREENS}/workspace-mask-brush.png")
    page.keyboard.press("Enter")
    area = page.locator(".ws-mask .ws-area").first
    expect(area).not_to_have_text(f"{before.area:,} px")

    brushed = Mask.objects.get(assignment=assignment)
    assert brushed.pk == before.pk and brushed.engine == "brush"
    assert brushed.area > before.area
    assert brushed.prompts == before.prompts  # the strokes keep the prompts they started from

    page.get_by_role("button", name="Correct mask 1").click()
    page.get_by_role("button", name="Eraser").click()
    paint_stroke(page, [(80, 5), (80, 50)])
    expect(page.locator("#ws-proposal")).to_contain_text("with the eraser")
    page.keyboard.press("Enter")
    expect(area).not_to_have_text(f"{brushed.area:,} px")

    erased = Mask.objects.get(assignment=assignment)
    assert erased.area < brushed.area
    assert abs(erased.area - before.area) <= before.area * 0.1 + 10
    changes = AuditEvent.objects.filter(action="mask.changed", actor=rater).order_by("id")
    assert [e.payload["after"]["area"] for e in changes] == [brushed.area, erased.area]
