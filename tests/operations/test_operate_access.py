"""The attacker's side of the operator application: an operator of line A cannot see or act on
line B (list, page, feed, keyframes, decide, API all answer line B's railcar as one that does not
exist); annotators, plant systems and outsiders never reach it; the decision needs CSRF."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from operations.models import OperatorDecision
from tests.conftest import client_for
from tests.operations.operate_factories import estimate, operator_of, railcar_on

pytestmark = pytest.mark.django_db
NOWHERE = 987654321


@pytest.fixture
def lines():
    mine, theirs = railcar_on("LA"), railcar_on("LB")
    return {
        "operator": operator_of("LA"),
        "mine": mine,
        "mine_estimate": estimate(mine, contamination_pct=2.25),
        "theirs": theirs,
        "theirs_estimate": estimate(theirs, contamination_pct=7.75),
    }


def pages(railcar_id: int) -> list[str]:
    return [
        reverse("operations:operate-unloading", args=[railcar_id]),
        reverse("operations:operate-keyframe", args=[railcar_id, 1]),
    ]


def body_without(response, *texts: str) -> bytes:
    content = response.content
    for text in texts:
        content = content.replace(text.encode(), b"{}")
    return content


def test_the_list_and_the_feed_show_only_the_operators_lines(lines):
    client = client_for(lines["operator"])

    page = client.get(reverse("operations:operate"))
    feed = client.get(reverse("operations:operate-feed")).json()

    assert lines["mine"].real_id.encode() in page.content
    assert lines["theirs"].real_id.encode() not in page.content
    assert [u["id"] for u in feed["unloadings"]] == [lines["mine"].pk]
    assert b"7.8" not in page.content


def test_another_lines_railcar_answers_exactly_like_one_that_does_not_exist(lines):
    client = client_for(lines["operator"])
    theirs, nowhere = lines["theirs"].pk, NOWHERE

    for victim, ghost in zip(pages(theirs), pages(nowhere), strict=True):
        a, b = client.get(victim), client.get(ghost)
        assert a.status_code == b.status_code == 404
        assert body_without(a, victim) == body_without(b, ghost)
    assert client.get(pages(lines["mine"].pk)[0]).status_code == 200
    assert client.get(pages(lines["mine"].pk)[1]).status_code == 200


def test_an_operator_cannot_decide_on_another_lines_railcar(lines):
    client = client_for(lines["operator"])
    body = {"estimate": lines["theirs_estimate"].pk, "action": "accept"}

    victim = client.post(reverse("operations:operate-decide", args=[lines["theirs"].pk]), body)
    ghost = client.post(reverse("operations:operate-decide", args=[NOWHERE]), body)

    assert victim.status_code == ghost.status_code == 404
    assert not OperatorDecision.objects.exists()


def test_an_estimate_of_another_line_cannot_be_decided_through_ones_own_railcar(lines):
    client = client_for(lines["operator"])
    url = reverse("operations:operate-decide", args=[lines["mine"].pk])

    response = client.post(url, {"estimate": lines["theirs_estimate"].pk, "action": "accept"})

    assert response.status_code == 400
    assert not OperatorDecision.objects.exists()
    assert b"7.8" not in response.content


def test_the_api_answers_another_lines_railcar_as_one_that_does_not_exist(lines):
    client = APIClient()
    client.force_authenticate(lines["operator"])
    body = {"estimate": lines["theirs_estimate"].pk, "action": "accept"}

    victim = client.post(f"/api/v1/operate/unloadings/{lines['theirs'].pk}/decision/", body)
    ghost = client.post(f"/api/v1/operate/unloadings/{NOWHERE}/decision/", body)
    feed = client.get("/api/v1/operate/unloadings/").json()

    assert victim.status_code == ghost.status_code == 404
    assert victim.json() == ghost.json()
    assert [u["id"] for u in feed["unloadings"]] == [lines["mine"].pk]
    assert not OperatorDecision.objects.exists()


def test_a_senior_inspector_sees_the_lines_granted_to_them_and_an_admin_every_line(
    lines, senior, admin_user
):
    from labeling import lines as line_access
    from labeling.models import Line

    line_access.grant(
        actor=None, user=senior, line=Line.objects.get(name="LB"),
        permission=line_access.OPERATE_LINE,
    )  # fmt: skip

    senior_feed = client_for(senior).get(reverse("operations:operate-feed")).json()
    admin_feed = client_for(admin_user).get(reverse("operations:operate-feed")).json()

    assert [u["id"] for u in senior_feed["unloadings"]] == [lines["theirs"].pk]
    assert {u["id"] for u in admin_feed["unloadings"]} == {lines["mine"].pk, lines["theirs"].pk}


def test_an_operator_without_lines_sees_nothing(lines):
    client = client_for(operator_of())

    assert client.get(reverse("operations:operate-feed")).json() == {"unloadings": []}
    assert client.get(pages(lines["mine"].pk)[0]).status_code == 404


@pytest.mark.parametrize("who", ["annotator", "plant", "outsider"])
def test_nobody_else_reaches_the_operator_application(lines, who, request):
    user = request.getfixturevalue(who)
    client, api = client_for(user), APIClient()
    api.force_authenticate(user)
    railcar = lines["mine"].pk

    for url in [reverse("operations:operate"), reverse("operations:operate-feed"), *pages(railcar)]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"2.2" not in response.content
    post = client.post(reverse("operations:operate-decide", args=[railcar]), {"action": "accept"})
    assert post.status_code == 403
    assert api.get("/api/v1/operate/unloadings/").status_code == 403
    assert api.post(f"/api/v1/operate/unloadings/{railcar}/decision/", {}).status_code == 403
    assert not OperatorDecision.objects.exists()


def test_anonymous_visitors_are_sent_to_log_in(lines):
    response = Client().get(reverse("operations:operate"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert APIClient().get("/api/v1/operate/unloadings/").status_code in (401, 403)


def test_the_decision_needs_a_csrf_token(lines):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lines["operator"])
    body = {"estimate": lines["mine_estimate"].pk, "action": "accept"}

    page = client.post(reverse("operations:operate-decide", args=[lines["mine"].pk]), body)
    api = client.post(f"/api/v1/operate/unloadings/{lines['mine'].pk}/decision/", body)

    assert page.status_code == 403 and api.status_code == 403
    assert not OperatorDecision.objects.exists()
