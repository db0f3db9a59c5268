"""The agreement page: who may see it, bad filters, what it shows, and in a browser. The statistics
themselves are tested in test_agreement_statistics.py."""

import os
import subprocess
import sys
from datetime import UTC, datetime

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from adjudication.agreement_statistics import bias_scale_mae
from adjudication.models import AdjudicationCase, FinalLabel, RaterCalibration
from labeling import rle
from labeling.models import Assignment, Mask, Railcar, Rating
from tests.adjudication.factories import rated_railcar
from tests.conftest import client_for
from tests.labeling.factories import annotators

pytest_plugins = ["tests.browser_fixtures"]

URL = "/adjudication/agreement/"


# --- the page -----------------------------------------------------------------------------------


@pytest.fixture
def committed(django_capture_on_commit_callbacks):
    """`with committed():` runs, at its end, what waits for a commit (the rating signal, hence
    aggregation, eager in tests) as a transactional test would, at a fraction of the cost."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def rated(db, committed) -> list[User]:
    """Six railcars through the real pool, rating and aggregation path; three raters whose
    readings differ in offset and scale; four railcars go to adjudication."""
    raters = annotators(3, prefix="insp")
    values = [
        (2.0, 3.0, 2.0, "3A"),
        (4.0, 5.5, 4.0, "3A"),
        (6.0, 8.0, 6.0, "3A1"),
        (8.0, 10.5, 8.0, "3A1"),
        (10.0, 10.1, 10.0, "3AH"),
        (3.0, 3.0, 3.0, "cast iron"),
    ]
    with committed():
        for a, b, c, grade in values:
            third = "3A" if grade == "3AH" else grade
            rated_railcar([a, b, c], [grade, grade, third], raters=raters)
    return raters


def test_the_page_refuses_everyone_but_seniors_and_admins(
    rated, annotator, plant, outsider, senior, admin_user
):
    refused = {"annotator": annotator, "plant": plant, "outsider": outsider, "a rater": rated[0]}
    for who, user in refused.items():
        response = client_for(user).get(URL)

        assert response.status_code == 403, who
        assert b"insp1" not in response.content and b"kappa" not in response.content, who
    anonymous = Client().get(URL)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert b"insp1" not in anonymous.content
    for user in (senior, admin_user):
        assert client_for(user).get(URL).status_code == 200


def test_the_page_only_answers_get(senior):
    assert client_for(senior).post(URL).status_code == 405


def test_seniors_see_agreement_and_rater_quality(senior, rated, django_assert_max_num_queries):
    client = client_for(senior)
    # Session, user, roles, lines, then ratings, labels, cases, calibrations, gold ratings, masks
    # by kind: not
    # one per railcar.
    with django_assert_max_num_queries(10):
        response = client.get(URL)

    assert response.status_code == 200
    assert reverse("adjudication:agreement") == URL
    report = response.context["report"]
    assert (report.railcars, report.ratings) == (6, 18)
    # The spreads of railcars 1 to 4 exceed 0.4: those went to adjudication, 5 and 6 are final.
    assert report.labeled == 2
    assert AdjudicationCase.objects.count() == 4
    by_name = {r.rater: r for r in report.raters}
    assert set(by_name) == {"insp0", "insp1", "insp2"}
    assert by_name["insp1"].adjudication_rate == pytest.approx(4 / 6)
    assert by_name["insp1"].median_seconds == 61.0  # the factory's 60 + position
    assert report.alpha is not None and report.alpha < 1
    body = response.content.decode()
    # Two railcars with a final label are too few for a rater's scale: no scatter yet.
    assert body.count("<svg") == 1 and "No rater has enough labeled railcars yet." in body
    assert "insp1" in body and "n/a" in body
    assert 'id="rater-confusion"' in body and 'id="final-confusion"' in body
    # Seniors may know railcar ids, but this page is about raters: it names none.
    assert not any(real_id in body for real_id in Railcar.objects.values_list("real_id", flat=True))


def test_rater_bias_and_scale_against_labels_set_through_the_real_path(senior, committed):
    raters = annotators(3, prefix="cal")
    # Rater 0 reads the truth, rater 1 truth + 0.2, rater 2 the truth again: spreads stay under
    # the threshold so every railcar becomes final by consensus.
    truths = [2.0, 4.0, 6.0, 8.0, 10.0]
    with committed():
        for t in truths:
            rated_railcar([t, t + 0.2, t], ["3A"] * 3, raters=raters)
    RaterCalibration.objects.create(
        annotator=raters[1], offset=0.3, scale=0.9, noise_sd=0.2, n_ratings=5,
        estimated_at=timezone.now(),
    )  # fmt: skip

    report = client_for(senior).get(URL).context["report"]
    by_name = {r.rater: r for r in report.raters}
    labels = [float(v) for v in FinalLabel.objects.order_by("railcar_id").values_list(
        "contamination_pct", flat=True)]  # fmt: skip

    expected = bias_scale_mae([t + 0.2 for t in truths], labels)
    assert by_name["cal1"].bias == pytest.approx(expected[0])
    assert by_name["cal1"].bias > 0 > by_name["cal0"].bias
    assert by_name["cal1"].scale == pytest.approx(expected[1])
    assert by_name["cal1"].adjudication_rate == 0.0
    assert by_name["cal1"].calibration.offset == 0.3 and by_name["cal0"].calibration is None


def test_the_page_counts_each_raters_masks_by_inclusion_kind(senior, rated):
    for n, (rater, kind) in enumerate([(0, "soil"), (0, "wood"), (0, "soil"), (2, "concrete")]):
        assignment = Assignment.objects.filter(annotator=rated[rater]).order_by("id")[n % 2]
        frame = assignment.railcar.frames.first()
        pixels = np.zeros((frame.height, frame.width), dtype=bool)
        pixels[:4, :4] = True
        Mask.objects.create(
            assignment=assignment, frame=frame, rle=rle.encode(pixels), prompts={},
            engine="test", area=16, kind=kind,
        )  # fmt: skip

    response = client_for(senior).get(URL)

    kinds = response.context["mask_kinds"]
    assert kinds.kinds == ["soil", "wood", "rubber", "concrete", "other"]
    assert kinds.rows == [("insp0", [2, 1, 0, 0, 0], 3), ("insp2", [0, 0, 0, 1, 0], 1)]
    body = response.content.decode()
    assert 'id="mask-kinds"' in body and "<th>concrete</th>" in body


def test_the_page_renders_with_no_data_at_all(senior):
    response = client_for(senior).get(URL)

    assert response.status_code == 200
    report = response.context["report"]
    assert report.railcars == 0 and report.buckets == [] and report.raters == []
    assert report.alpha is None and report.kappa.value is None
    assert b"No ratings in this range." in response.content


def test_the_date_range_and_line_filter_railcars_by_their_last_rating(senior, rated):
    first, *rest = list(Rating.objects.values_list("railcar_id", flat=True).distinct())
    Rating.objects.filter(railcar_id=first).update(
        submitted_at=datetime(2025, 1, 15, 10, tzinfo=UTC)
    )
    client = client_for(senior)

    january = client.get(URL, {"from": "2025-01-15", "to": "2025-01-15"}).context["report"]
    after = client.get(URL, {"from": "2025-01-16"}).context["report"]
    elsewhere = client.get(URL, {"line": "L9"}).context["report"]
    here = client.get(URL, {"line": "L2"}).context["report"]

    assert (january.railcars, after.railcars) == (1, len(rest))
    assert (elsewhere.railcars, here.railcars) == (0, 6)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"from": "2026-13-01"}, "Enter a valid date."),
        ({"from": "yesterday"}, "Enter a valid date."),
        ({"to": "2026-02-3"}, None),  # a short day is still a valid ISO-ish date
        ({"from": "2026-03-10", "to": "2026-03-01"}, "comes before its start"),
        ({"from": "0001-01-01"}, "Enter a date between"),
        ({"to": "9999-12-31"}, "Enter a date between"),
        ({"from": "2026-01-01\x00"}, "Enter a valid date."),
        ({"line": "L" * 5000}, "at most 32 characters"),
        ({"line": "L2\x00"}, "Null characters are not allowed."),
        ({"from": "'; DROP TABLE labeling_rating; --"}, "Enter a valid date."),
    ],
)
def test_bad_filters_get_a_clear_message_not_a_crash(senior, params, message):
    response = client_for(senior).get(URL, params)

    if message is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "report" not in response.context


def test_filter_values_are_escaped_when_echoed(senior):
    response = client_for(senior).get(URL, {"line": "<script>x</script>", "from": "<b>"})

    assert response.status_code == 400
    assert b"<script>x" not in response.content and b"<b>" not in response.content


def test_a_username_with_markup_is_escaped_in_the_table_and_the_chart(senior, committed):
    raters = annotators(3, prefix='<svg onload="alert(1)">')
    with committed():
        for t in [2.0, 4.0, 6.0]:
            rated_railcar([t, t, t + 0.1], ["3A"] * 3, raters=raters)

    response = client_for(senior).get(URL)

    body = response.content.decode()
    assert response.status_code == 200 and response.context["charts"]["scatter_points"] == 3
    assert "onload=" not in body.replace("onload=&quot;", "")
    assert "&lt;svg onload=&quot;alert(1)&quot;&gt;0" in body


def test_a_statsmodels_import_is_paid_by_this_page_only():
    code = "import sys, django; django.setup(); import adjudication.agreement_report; " \
        "print('statsmodels' in sys.modules)"  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "scrapannot.settings"},
    )  # fmt: skip

    assert out.stdout.strip() == "False"


# --- in a browser -------------------------------------------------------------------------------


@pytest.mark.browser
def test_a_senior_reads_the_charts_and_narrows_the_range_in_chromium(page, log_in, senior):
    raters = annotators(3, prefix="br")
    # Ten railcars, agreeing closely enough to be final: five in each of two weeks.
    for i, t in enumerate([2.0, 4.0, 6.0, 8.0, 10.0, 3.0, 5.0, 7.0, 9.0, 11.0]):
        railcar, _ = rated_railcar([t, t + 0.1, t + 0.3], ["3A", "3A", "3A1"], raters=raters)
        Rating.objects.filter(railcar=railcar).update(
            submitted_at=datetime(2026, 3, 3 if i < 5 else 10, 12, tzinfo=UTC)
        )
    assert FinalLabel.objects.count() == 10
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    log_in(username="senior", password="senior-pass-1")
    page.goto(URL)

    charts_on_page = page.locator("svg.chart")
    assert charts_on_page.count() == 2
    assert charts_on_page.first.bounding_box()["width"] > 300
    assert page.locator("svg.chart polyline").count() == 2  # alpha and kappa over two weeks
    assert page.locator("#raters tbody tr").count() == 3
    assert page.locator("#rater-confusion").is_visible()
    assert page.locator("#buckets tbody tr").count() == 2

    page.fill("input[name=from]", "2026-03-09")
    page.click("#agreement-filter button")
    page.wait_for_load_state()

    assert "from=2026-03-09" in page.url
    assert page.locator("#summary").inner_text().startswith("5 railcars")
    assert page.locator("#buckets tbody tr").count() == 1

    page.goto(URL + "?from=2026-03-10&to=2026-03-01")
    assert "comes before its start" in page.locator("#filter-errors").inner_text()
    assert errors == []
