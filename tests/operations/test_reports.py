"""The operational report of one unloading (seed 000, section 6.2): its fields, and who sees the
page, the printable page and the JSON API."""

import datetime as dt

import pytest
from django.urls import reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from operations.reports import unloading_report
from scrapannot.roles import Role
from tests.conftest import client_for
from tests.operations.report_factories import (
    amend,
    escalate,
    estimate,
    make_ineligible,
    operator_of,
    unloading,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def test_the_report_holds_every_field_the_seed_lists():
    railcar = unloading(line="L1", real_id="RC-55501234")
    make_ineligible(railcar, 3)
    estimate(railcar, layers_scored=2, pct=4.25, flags={"blur": 1, "haze": 2})
    operator = operator_of("olga", "L1")
    amend(railcar, operator, pct="6.5", grade="3AH", note="soil on layer 2")
    escalate(railcar)

    report = unloading_report(railcar)

    assert report["railcar"] == {"id": railcar.pk, "real_id": "RC-55501234", "line": "L1",
                                 "camera": "L1-TOP-1", "status": railcar.status}  # fmt: skip
    assert report["unloading"]["started_at"] == railcar.unloading_started_at.isoformat()
    assert report["unloading"]["ended_at"] == railcar.unloading_ended_at.isoformat()
    est = report["estimate"]
    assert est["contamination_pct"] == 4.25 and est["grade"] == "3A1"
    assert est["grade_probs"]["3A1"] == 0.7
    assert est["confidence"] == 0.8 and est["expected_error_pct"] == 0.61
    assert est["model_version"] == 7 and est["estimated_at"]
    assert [layer["layer"] for layer in est["per_layer"]] == [1, 2]
    assert report["layers"] == {"total": 3, "eligible": 2, "scored": 2}
    assert report["quality_flags"] == {"blur": 1, "haze": 2}
    assert report["anomalies"]["ineligible_frames"] == 1
    decision = report["decision"]
    assert decision["action"] == "amend" and decision["contamination_pct"] == 6.5
    assert decision["grade"] == "3AH" and decision["rationale_code"] == "visible_soil"
    assert decision["note"] == "soil on layer 2" and decision["by"] == "olga" and decision["at"]
    assert report["escalation"]["route"] == "senior"
    assert report["escalation"]["reasons"][0]["rule"] == "contamination_above"


def test_the_report_reads_the_estimate_of_the_most_layers_then_the_newest():
    railcar = unloading()
    estimate(railcar, layers_scored=3, pct=5.0)
    estimate(railcar, layers_scored=1, pct=1.0)
    assert unloading_report(railcar)["estimate"]["contamination_pct"] == 5.0


def test_an_unloading_not_scored_yet_reports_no_estimate_decision_or_escalation():
    report = unloading_report(unloading())
    assert report["estimate"] is None and report["decision"] is None
    assert report["escalation"] is None
    assert report["layers"]["scored"] == 0 and report["quality_flags"] == {}


def test_an_operator_of_the_line_reads_the_page_and_its_printable_version():
    railcar = unloading(line="L1", real_id="RC-55509876")
    estimate(railcar, pct=4.25)
    client = client_for(operator_of("olga", "L1"))

    page = client.get(reverse("operations:report", args=[railcar.pk]))
    assert page.status_code == 200
    assert b"RC-55509876" in page.content and b"4.3 %" in page.content
    assert page["Cache-Control"] == "private, no-store"
    gradcam = reverse("operations:explanation", args=[railcar.pk, 2])
    assert f'href="{gradcam}"'.encode() in page.content and b"0.500" in page.content
    printable = client.get(reverse("operations:report", args=[railcar.pk]) + "?print=1")
    assert printable.status_code == 200 and b"@media print" in printable.content
    assert b"RC-55509876" in printable.content


def test_another_lines_railcar_answers_like_one_that_does_not_exist():
    theirs = unloading(line="L2")
    estimate(theirs)
    client = client_for(operator_of("olga", "L1"))
    for railcar_id in (theirs.pk, theirs.pk + 10_000):
        url = reverse("operations:report", args=[railcar_id])
        assert client.get(url).status_code == 404
        assert client.get(url + "?print=1").status_code == 404
        api = reverse("unloading-report", args=[railcar_id])
        assert client.get(api).status_code == 404


def test_senior_inspectors_need_the_line_and_admins_see_every_line(senior, admin_user):
    railcar = unloading(line="L3")
    url = reverse("operations:report", args=[railcar.pk])
    assert client_for(senior).get(url).status_code == 404
    granted = operator_of("sonja", "L3", role=Role.SENIOR_INSPECTOR)
    assert client_for(granted).get(url).status_code == 200
    assert client_for(admin_user).get(url).status_code == 200


@pytest.mark.parametrize("who", ["annotator", "plant", "outsider"])
def test_annotators_and_others_never_get_a_report(who, request):
    railcar = unloading(line="L1")
    estimate(railcar, pct=4.25)
    user = request.getfixturevalue(who)
    client = client_for(user)
    for url in (
        reverse("operations:report", args=[railcar.pk]),
        reverse("operations:report", args=[railcar.pk]) + "?print=1",
        reverse("unloading-report", args=[railcar.pk]),
    ):
        response = client.get(url)
        assert response.status_code in (403, 404), url
        assert b"4.25" not in response.content and railcar.real_id.encode() not in response.content


def test_the_api_serves_the_same_report_to_an_operators_token():
    railcar = unloading(line="L1")
    estimate(railcar, pct=4.25)
    operator = operator_of("olga", "L1")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=operator).key}")

    response = client.get(reverse("unloading-report", args=[railcar.pk]))

    assert response.status_code == 200
    assert response.json() == unloading_report(railcar)
    assert response["Cache-Control"] == "private, no-store"


def test_anonymous_visitors_are_sent_to_log_in():
    railcar = unloading()
    response = client_for(None).get(reverse("operations:report", args=[railcar.pk]))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert APIClient().get(reverse("unloading-report", args=[railcar.pk])).status_code in (401, 403)


def test_the_page_answers_get_only():
    railcar = unloading(line="L1")
    client = client_for(operator_of("olga", "L1"))
    assert client.post(reverse("operations:report", args=[railcar.pk])).status_code == 405


def test_times_are_reported_in_iso_8601():
    started = dt.datetime(2026, 12, 1, 7, 30, tzinfo=dt.UTC)
    report = unloading_report(unloading(started=started))
    assert report["unloading"]["started_at"] == "2026-12-01T07:30:00+00:00"
