"""The adjudication case page's evidence: raters by letter only, their masks and exclusions, the
prefilled form, the model estimate, the timeline link."""

import json
import re
from decimal import Decimal

import pytest
from django.urls import reverse

from adjudication.estimates import Estimate, register_provider
from labeling import rle as rle_codec
from labeling.models import Assignment
from tests.adjudication.disputes import EXCLUSION_NOTE, MASK_BOXES, case_url
from tests.conftest import client_for

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


# The case page


def test_the_case_page_shows_raters_by_letter_and_never_who_they_are(senior, case):
    ratings = list(case.railcar.ratings.order_by("id").select_related("annotator"))
    pseudonyms = Assignment.objects.filter(railcar=case.railcar).values_list("pseudonym", flat=True)

    response = client_for(senior).get(case_url(case))

    body = response.content.decode()
    for secret in [
        *(r.annotator.username for r in ratings), *pseudonyms, case.railcar.real_id,
        case.railcar.camera, case.railcar.fingerprint,
        *case.railcar.frames.values_list("source_name", flat=True),
    ]:  # fmt: skip
        assert secret not in body
    table = re.search(r'<table class="adj-raters".*?</table>', body, re.S).group(0)
    for letter, rating in zip("ABC", ratings, strict=True):
        row = re.search(rf'<tr data-rater="{letter}">(.*?)</tr>', table, re.S).group(1)
        assert f"Rater {letter}" in row
        assert f"{rating.contamination_pct} %" in row and f"{rating.seconds_spent} s" in row
    assert [r.excluded for r in response.context["raters"]] == [0, 0, 1]
    assert str(case.railcar.uid) in body


def test_the_case_page_embeds_every_raters_masks_and_exclusions_by_letter(senior, case):
    keyframe, second = case.railcar.frames.filter(layer__index=1).order_by("index")[:2]

    body = client_for(senior).get(case_url(case)).content.decode()

    script = re.search(r'<script id="adj-evidence" type="application/json">(.*?)</script>', body)
    evidence = json.loads(script.group(1))
    assert [r["letter"] for r in evidence["raters"]] == ["A", "B", "C"]
    assert len({r["colour"] for r in evidence["raters"]}) == 3
    for letter, (x0, y0, x1, y1) in zip("ABC", MASK_BOXES, strict=True):
        (mask,) = [m for m in evidence["masks"] if m["rater"] == letter]
        assert mask["frame"] == str(keyframe.uid)
        pixels = rle_codec.decode(mask["rle"])
        assert pixels[y0:y1, x0:x1].all() and pixels.sum() == (x1 - x0) * (y1 - y0)
        # No mask, rating or assignment id; the inclusion kind the rater chose.
        assert set(mask) == {"rater", "frame", "rle", "kind"} and mask["kind"] == "other"
    assert evidence["exclusions"] == [
        {"rater": "C", "frame": str(second.uid), "code": "dust/smoke", "note": EXCLUSION_NOTE}
    ]
    layer_frames = [[f["id"] for f in layer["frames"]] for layer in evidence["layers"]]
    assert layer_frames[0] == [str(keyframe.uid), str(second.uid)]
    assert len(layer_frames) == 2


def test_a_hostile_exclusion_note_cannot_break_out_of_the_page(senior, make_case):
    case = make_case(exclusion_note="</script><script>alert(1)</script>")

    body = client_for(senior).get(case_url(case)).content.decode()

    assert "<script>alert(1)" not in body
    assert body.count("</script>") == body.count("<script")


def test_the_form_is_prefilled_with_the_consensus_mean_and_majority_grade(senior, make_case):
    majority = make_case(("10.0", "12.0", "14.1"), ("3A1", "3A", "3A1"))
    split = make_case(("10.0", "12.0", "14.0"), ("3A", "3A1", "3AH"))

    with_majority = client_for(senior).get(case_url(majority)).context["form"]
    without = client_for(senior).get(case_url(split)).context["form"]

    assert with_majority.initial == {"contamination_pct": Decimal("12.0"), "grade": "3A1"}
    assert without.initial == {"contamination_pct": Decimal("12.0")}
    body = client_for(senior).get(case_url(majority)).content.decode()
    assert 'value="12.0"' in body and re.search(r'value="3A1" required checked', body)


_estimates: dict[int, Estimate] = {}


def _test_estimates(railcar_id: int) -> Estimate | None:
    return _estimates.get(railcar_id)


@pytest.fixture
def estimates():
    register_provider(_test_estimates)  # once per process: register_provider keeps one of each
    yield _estimates
    _estimates.clear()


def test_the_model_estimate_shows_when_there_is_one(senior, make_case, estimates):
    scored, unscored = make_case(), make_case()
    estimates[scored.railcar_id] = Estimate(
        contamination_pct=13.24, grade="3AH", grade_probability=0.71, uncertainty=0.18,
        model_label="model v7",
    )  # fmt: skip

    shown = client_for(senior).get(case_url(scored)).content.decode()
    absent = client_for(senior).get(case_url(unscored)).content.decode()

    estimate = re.search(r'<dl class="adj-facts" id="adj-estimate">(.*?)</dl>', shown, re.S)
    assert "model v7" in estimate.group(1) and "13.2 %, 3AH" in estimate.group(1)
    assert "0.71" in estimate.group(1) and "0.18" in estimate.group(1)
    assert "No model estimate." in absent and "model v7" not in absent


def test_admins_get_the_railcar_timeline_link_and_seniors_do_not(senior, admin_user, case):
    timeline = reverse("operations:railcar-timeline", args=[case.railcar_id])

    assert timeline.encode() in client_for(admin_user).get(case_url(case)).content
    assert timeline.encode() not in client_for(senior).get(case_url(case)).content
