"""The operator's pages and API from the operator's side: what they show, and the decision form
and API with their field errors."""

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from operations.models import OperatorDecision
from operations.operate_views import explanations_available
from tests.conftest import client_for
from tests.operations.operate_factories import estimate, operator_of, railcar_on

pytestmark = pytest.mark.django_db


@pytest.fixture
def operator():
    return operator_of("L1")


@pytest.fixture
def railcar():
    return railcar_on("L1", layers=3)


def test_the_list_shows_each_unloadings_latest_estimate_newest_first(operator):
    older, newer = railcar_on("L1"), railcar_on("L1")
    estimate(older, contamination_pct=1.5, layers_scored=1)
    estimate(older, contamination_pct=2.75, grade="3A1", confidence=0.62, layers_scored=2,
             quality_flags={"haze": 2})  # fmt: skip

    rows = client_for(operator).get(reverse("operations:operate-feed")).json()["unloadings"]

    assert [r["id"] for r in rows] == [newer.pk, older.pk]
    assert rows[0]["estimate"] is None
    e = rows[1]["estimate"]
    assert (e["contamination_pct"], e["grade"], e["confidence"]) == (2.75, "3A1", 0.62)
    assert (e["layers_scored"], e["quality_flags"], e["model_version"]) == (2, {"haze": 2}, 1)
    page = client_for(operator).get(reverse("operations:operate"))
    assert b"2.8 %" in page.content and b"haze" in page.content


def test_the_unloading_page_shows_layers_attention_and_the_estimate_history(operator, railcar):
    estimate(railcar, contamination_pct=1.0, layers_scored=1)
    estimate(railcar, contamination_pct=2.5, layers_scored=2)

    page = client_for(operator).get(reverse("operations:operate-unloading", args=[railcar.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('data-layer="') == 3
    assert "attention 0.50" in html
    assert reverse("operations:operate-keyframe", args=[railcar.pk, 1]) in html
    assert 'id="estimate-contamination">2.5 %' in html
    assert html.count("<td>v1</td>") == 2  # both estimates in the history


def test_the_page_leaves_the_grad_cam_out_until_explanations_exist(operator, railcar):
    estimate(railcar)
    page = client_for(operator).get(reverse("operations:operate-unloading", args=[railcar.pk]))
    assert page.status_code == 200
    assert (b"gradcam" in page.content) == explanations_available()


def test_an_operator_accepts_an_estimate_from_the_page(operator, railcar):
    e = estimate(railcar)
    url = reverse("operations:operate-decide", args=[railcar.pk])

    response = client_for(operator).post(url, {"estimate": e.pk, "action": "accept"})

    assert response.status_code == 302
    assert OperatorDecision.objects.get().action == "accept"


def test_an_operator_amends_with_a_rationale_code_and_a_note(operator, railcar):
    e = estimate(railcar, contamination_pct=2.0)
    url = reverse("operations:operate-decide", args=[railcar.pk])
    body = {
        "estimate": e.pk, "action": "amend", "contamination_pct": "2.5", "grade": "",
        "rationale_code": "visible_inclusions", "note": "plastic on top",
    }  # fmt: skip

    client_for(operator).post(url, body)

    d = OperatorDecision.objects.get()
    assert (d.contamination_pct, d.grade, d.rationale_code, d.note) == (
        2.5, "", "visible_inclusions", "plastic on top",
    )  # fmt: skip


@pytest.mark.parametrize(
    "amendment, field, message",
    [
        ({"contamination_pct": "100.5"}, "contamination_pct", "less than or equal to 100"),
        ({"contamination_pct": "-1"}, "contamination_pct", "greater than or equal to 0"),
        ({"grade": "premium"}, "grade", "Select a valid choice"),
        ({"grade": "3A1", "rationale_code": "whim"}, "rationale_code", "Select a valid choice"),
        ({"grade": "3A1", "rationale_code": ""}, "rationale_code", "one of"),
        ({"grade": "3A1", "rationale_code": "other"}, "note", "needs a note"),
    ],
)
def test_an_invalid_amendment_gets_a_field_error(operator, railcar, amendment, field, message):
    e = estimate(railcar)
    url = reverse("operations:operate-decide", args=[railcar.pk])
    body = {"estimate": e.pk, "action": "amend", "rationale_code": "sample_analysis", **amendment}

    response = client_for(operator).post(url, body)

    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert message in " ".join(response.context["form"].errors[field])
    assert f'data-field="{field}"'.encode() in response.content
    assert not OperatorDecision.objects.exists()


def test_the_api_records_a_decision_and_refuses_invalid_fields(operator, railcar):
    e = estimate(railcar, contamination_pct=2.0)
    api = APIClient()
    api.force_authenticate(operator)
    url = f"/api/v1/operate/unloadings/{railcar.pk}/decision/"

    bad = api.post(url, {"estimate": e.pk, "action": "amend", "grade": "3A1",
                         "rationale_code": "whim"}, format="json")  # fmt: skip
    out = api.post(url, {"estimate": e.pk, "action": "amend", "contamination_pct": 2.4,
                         "rationale_code": "sample_analysis"}, format="json")  # fmt: skip

    assert bad.status_code == 400 and "rationale_code" in bad.json()
    assert out.status_code == 201
    assert out.json()["decision"]["contamination_pct"] == 2.4
    assert OperatorDecision.objects.count() == 1


def test_the_api_feed_is_the_pages_feed(operator, railcar):
    estimate(railcar)
    api = APIClient()
    api.force_authenticate(operator)

    from_api = api.get("/api/v1/operate/unloadings/").json()
    from_page = client_for(operator).get(reverse("operations:operate-feed")).json()

    assert from_api == from_page


def test_the_feed_takes_a_fixed_number_of_queries(operator, django_assert_max_num_queries):
    for _ in range(6):
        estimate(railcar_on("L1", layers=1, frames_per_layer=1))
    client = client_for(operator)
    with django_assert_max_num_queries(12):
        client.get(reverse("operations:operate-feed"))


def test_the_home_page_sends_an_operator_to_the_unloadings(operator):
    page = client_for(operator).get(reverse("home"))
    assert reverse("operations:operate").encode() in page.content
    assert b'data-role="operator"' in page.content


def test_an_admin_edits_the_rationale_codes_on_the_policies_page(admin_user, operator, railcar):
    estimate(railcar)
    client_for(admin_user).post(
        reverse("policies"), {"key": "operate.rationale_codes", "value": "lab_sample,other"}
    )

    page = client_for(operator).get(reverse("operations:operate-unloading", args=[railcar.pk]))

    choices = [c for c, _ in page.context["form"].fields["rationale_code"].choices]
    assert choices == ["", "lab_sample", "other"]
