"""The adjudication pages in Debian's chromium: a senior inspector opens the top case of the
queue, sees Rater A, B and C with their masks drawn in their colours, hides a rater with a key,
decides with the keyboard only and lands on the next case."""

import re
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from playwright.sync_api import Page, expect

from adjudication.models import AdjudicationCase, FinalLabel
from labeling.models import Railcar
from tests.adjudication.disputes import MASK_BOXES, disputed_railcar, open_case_of, senior_named

pytest_plugins = ["tests.browser_fixtures"]
pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("fast_password_hashing")]

# RATER_COLOURS of adjudication.case_views for A, B, C, as RGB.
BLUE, ORANGE = (59, 130, 246), (249, 115, 22)
EDGE_ALPHA = 0.85  # a mask's edge is drawn opaque, at the overlay's alpha


@pytest.fixture(autouse=True)
def _no_script_errors(page: Page) -> Iterator[None]:
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []


@pytest.fixture
def senior_user(transactional_db) -> User:
    return senior_named("inspector")


@pytest.fixture
def cases(transactional_db) -> list[AdjudicationCase]:
    """Two open cases; the first has the wider spread, so it tops the queue."""
    wide = open_case_of(disputed_railcar(("4.0", "12.0", "20.0"), ("3A", "3A1", "3A1")))
    mild = open_case_of(disputed_railcar(("10.0", "11.0", "12.0"), ("3A", "3A", "3A1")))
    return [wide, mild]


def log_in(page: Page, user: User) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(f"{user.username}-pass-1")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


def first_frames(railcar: Railcar) -> list[str]:
    return [str(f.uid) for f in railcar.frames.filter(layer__index=1).order_by("index")]


def pixel(page: Page, x: float, y: float) -> tuple[int, int, int]:
    """The colour on the canvas where the frame pixel (x, y) is drawn now."""
    return tuple(
        page.evaluate(
            """([x, y]) => {
                const canvas = document.getElementById("ws-canvas");
                const [scale, ox, oy] = ["scale", "ox", "oy"].map((k) => Number(canvas.dataset[k]));
                const dpr = window.devicePixelRatio || 1;
                const px = Math.floor((ox + (x + 0.5) * scale) * dpr);
                const py = Math.floor((oy + (y + 0.5) * scale) * dpr);
                const data = canvas.getContext("2d").getImageData(px, py, 1, 1).data;
                return Array.from(data.slice(0, 3));
            }""",
            [x, y],
        )
    )


def near(colour: tuple[int, ...], rater: tuple[int, int, int]) -> bool:
    """An edge pixel is EDGE_ALPHA of the rater's colour over whatever the frame has there."""
    slack = (1 - EDGE_ALPHA) * 255 + 3
    return all(abs(c - EDGE_ALPHA * r) <= slack for c, r in zip(colour, rater, strict=True))


def test_a_senior_decides_the_top_case_with_the_keyboard_and_lands_on_the_next(
    page: Page, senior_user: User, cases: list[AdjudicationCase]
) -> None:
    top, following = cases
    keyframe, second = first_frames(top.railcar)
    log_in(page, senior_user)
    page.goto(reverse("adjudication:queue"))
    expect(page.locator("#open-cases tbody tr").first).to_have_attribute("data-case", str(top.pk))
    page.get_by_role("link", name="Open the top case").click()

    canvas = page.locator("#ws-canvas")
    expect(canvas).to_have_attribute("data-frame", keyframe)
    for letter in "ABC":
        expect(page.locator(f"#adj-raters tr[data-rater={letter}]")).to_contain_text(
            f"Rater {letter}"
        )
    stage = page.locator("#adj-stage")
    expect(stage).to_have_attribute("data-drawn", "A B C")
    # Each rater's masks on this frame with the inclusion kind they gave them.
    expect(page.locator("#adj-frame-info li[data-rater=A]")).to_have_text("Rater A: 1 mask (other)")
    page.wait_for_timeout(100)  # the viewer draws on the next animation frame
    a_edge, b_edge = MASK_BOXES[0][:2], MASK_BOXES[1][:2]
    assert near(pixel(page, *a_edge), BLUE), pixel(page, *a_edge)
    assert near(pixel(page, *b_edge), ORANGE), pixel(page, *b_edge)

    page.keyboard.press("1")  # Rater A's masks off
    expect(stage).to_have_attribute("data-drawn", "B C")
    expect(page.locator("#adj-toggles button[data-rater=A]")).to_have_attribute(
        "aria-pressed", "false"
    )
    page.wait_for_timeout(100)
    assert not near(pixel(page, *a_edge), BLUE)
    assert near(pixel(page, *b_edge), ORANGE)

    page.keyboard.press("n")  # the frame Rater C excluded
    expect(canvas).to_have_attribute("data-frame", second)
    expect(page.locator("#adj-excluded-banner")).to_have_text("Excluded by Rater C (dust/smoke)")

    page.keyboard.press("c")
    page.keyboard.type("13.5")
    page.keyboard.press("Escape")
    page.keyboard.press("g")
    page.keyboard.press("2")
    page.keyboard.press("r")
    page.keyboard.press("3")
    page.keyboard.press("Control+Enter")
    confirm = page.locator("#adj-confirm")
    expect(confirm).to_be_visible()
    expect(confirm).to_contain_text("13.5 %, grade 3A1, rationale: one rater is an outlier.")
    page.keyboard.press("Enter")

    expect(page).to_have_url(
        re.compile(re.escape(reverse("adjudication:case", args=[following.pk])))
    )
    expect(page.locator(".messages")).to_contain_text(f"Case {top.pk} decided: 13.5 %, 3A1")
    label = FinalLabel.objects.get(railcar=top.railcar)
    assert (label.contamination_pct, label.grade) == (Decimal("13.5"), "3A1")
    assert label.decided_by == senior_user
    top.refresh_from_db()
    assert (top.status, top.rationale_code) == ("decided", "rater_outlier")


def test_esc_backs_out_of_the_confirmation_and_help_lists_the_keys(
    page: Page, senior_user: User, cases: list[AdjudicationCase]
) -> None:
    top = cases[0]
    log_in(page, senior_user)
    page.goto(reverse("adjudication:case", args=[top.pk]))
    expect(page.locator("#adj-stage")).to_have_attribute("data-drawn", "A B C")

    page.keyboard.press("?")
    help_overlay = page.locator("#ws-help")
    expect(help_overlay).to_be_visible()
    for text in ["show or hide Rater A", "choose the rationale", "skip to the next open case"]:
        expect(help_overlay).to_contain_text(text)
    page.keyboard.press("Escape")
    expect(help_overlay).to_be_hidden()

    # The form comes prefilled with the mean and majority grade; no rationale yet.
    page.keyboard.press("Control+Enter")
    expect(page.locator("#adj-confirm")).to_be_hidden()
    page.keyboard.press("r")
    page.keyboard.press("6")  # other, which needs a note
    page.keyboard.press("Control+Enter")
    expect(page.locator("#adj-form-error")).to_contain_text("needs a note")
    page.keyboard.type("layer 2 shows a tarp")
    page.keyboard.press("Control+Enter")
    expect(page.locator("#adj-confirm")).to_contain_text("12.0 %, grade 3A1")
    page.keyboard.press("Escape")
    expect(page.locator("#adj-confirm")).to_be_hidden()
    assert not FinalLabel.objects.filter(railcar=top.railcar).exists()

    page.keyboard.press("Control+Enter")
    page.keyboard.press("Enter")
    expect(page).not_to_have_url(re.compile(f"/cases/{top.pk}/$"))
    label = FinalLabel.objects.get(railcar=top.railcar)
    assert label.case.note == "layer 2 shows a tarp"
    page.goto(reverse("adjudication:case", args=[top.pk]))
    expect(page.locator("#adj-closed")).to_contain_text("12.0 %, 3A1")
    page.keyboard.press("q")
    expect(page).to_have_url(re.compile(re.escape(reverse("adjudication:queue")) + "$"))
