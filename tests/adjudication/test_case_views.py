"""The senior inspectors' decisions on the adjudication pages, good and bad, and two inspectors at
once. Who gets in, the queue and the case page's evidence are in test_case_access.py,
test_case_queue.py and test_case_page.py."""

import queue
import re
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from adjudication import decisions
from adjudication.models import AdjudicationCase, FinalLabel
from adjudication.policies import STD_THRESHOLD
from labeling.models import Railcar
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from scrapannot.roles import Role
from tests.adjudication.disputes import (
    GOOD,
    case_url,
    decided_events,
    disputed_railcar,
    open_case_of,
    senior_named,
)
from tests.concurrency import run_at_once
from tests.conftest import client_for
from tests.labeling.factories import annotators

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


# Decisions


def test_a_decision_sets_the_final_label_and_opens_the_next_case(senior, make_case):
    case, following = make_case(), make_case()
    client = client_for(senior)

    response = client.post(case_url(case), {**GOOD, "note": " read from layer 2 "})

    assert response.status_code == 302 and response["Location"] == case_url(following)
    label = FinalLabel.objects.get(railcar=case.railcar)
    assert (label.contamination_pct, label.grade) == (Decimal("11.5"), "3A1")
    assert (label.source, label.decided_by, label.case_id) == ("adjudication", senior, case.pk)
    case.refresh_from_db()
    case.railcar.refresh_from_db()
    assert case.status == AdjudicationCase.Status.DECIDED and case.decided_by == senior
    assert (case.rationale_code, case.note) == ("frame_evidence", "read from layer 2")
    assert case.railcar.status == Railcar.Status.LABELED
    event = AuditEvent.objects.get(action="adjudication.decided")
    assert event.actor == senior
    assert event.payload["final_label"] == label.pk and event.payload["grade"] == "3A1"
    page = client.get(response["Location"]).content.decode()
    assert f"Case {case.pk} decided: 11.5 %, 3A1" in page


def test_the_last_decision_goes_back_to_the_queue(senior, case):
    response = client_for(senior).post(case_url(case), GOOD)

    assert response.status_code == 302 and response["Location"] == reverse("adjudication:queue")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"contamination_pct": "abc"}, "Enter a number."),
        ({"contamination_pct": "NaN"}, "Enter a number."),
        ({"contamination_pct": "Infinity"}, "Enter a number."),
        ({"contamination_pct": "1e400"}, "Ensure that there are no more than 4 digits"),
        ({"contamination_pct": "-0.1"}, "greater than or equal to 0"),
        ({"contamination_pct": "100.1"}, "less than or equal to 100"),
        ({"contamination_pct": "12.34"}, "no more than 1 decimal place"),
        ({"contamination_pct": ""}, "This field is required."),
        ({"grade": "4B"}, "Select a valid choice. 4B is not one of the available choices."),
        ({"grade": "3A'; DROP TABLE"}, "Select a valid choice."),
        ({"rationale_code": "coin_toss"}, "Select a valid choice. coin_toss is not one"),
        ({"rationale_code": "other"}, "The rationale &#x27;other&#x27; needs a note"),
        ({"rationale_code": "other", "note": "   \n "}, "needs a note"),
        ({"note": "n" * 1001}, "at most 1000 characters (it has 1001)"),
        ({"note": "nul \x00 byte"}, "Null characters are not allowed."),
    ],
)
def test_bad_input_re_renders_the_form_with_a_message_and_records_nothing(
    senior, case, data, message
):
    response = client_for(senior).post(case_url(case), {**GOOD, **data})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Not recorded:" in response.content.decode()
    assert response.context["form"].data["grade"] == data.get("grade", GOOD["grade"])
    case.refresh_from_db()
    assert case.status == AdjudicationCase.Status.OPEN
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    assert decided_events() == 0


@pytest.mark.parametrize("missing", ["contamination_pct", "grade", "rationale_code"])
def test_a_decision_missing_a_field_is_refused(senior, case, missing):
    data = {k: v for k, v in GOOD.items() if k != missing}

    response = client_for(senior).post(case_url(case), data)

    assert response.status_code == 400
    assert "This field is required." in response.content.decode()
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()


def test_an_oversized_post_is_refused_and_records_nothing(senior, case, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024

    response = client_for(senior).post(case_url(case), {**GOOD, "note": "x" * 100_000})

    assert response.status_code == 400
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()


def test_a_decision_needs_the_csrf_token(senior, case):
    client = client_for(senior, enforce_csrf_checks=True)

    response = client.post(case_url(case), GOOD)

    assert response.status_code == 403
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    page = client.get(case_url(case))
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    ok = client.post(case_url(case), {**GOOD, "csrfmiddlewaretoken": token.group(1)})
    assert ok.status_code == 302 and FinalLabel.objects.filter(railcar=case.railcar).exists()


def test_a_decided_case_is_read_only_and_a_late_decision_says_who_decided(senior, make_case):
    case = make_case()
    other = senior_named("senior-two")
    decisions.decide(
        case_id=case.pk, actor=other, contamination_pct=Decimal("13.0"), grade="3A",
        rationale_code="agrees_with_majority",
    )  # fmt: skip
    client = client_for(senior)

    page = client.get(case_url(case))
    late = client.post(case_url(case), GOOD, follow=True)

    assert page.context["form"] is None
    body = page.content.decode()
    assert 'id="adj-decision"' not in body
    assert "Final label: <strong>13.0 %, 3A</strong>" in body and "senior-two" in body
    assert late.redirect_chain == [(case_url(case), 302)]
    assert (
        f"Case {case.pk} was already decided by senior-two. Your decision (11.5 %, 3A1, "
        "re-read from the frames) was not recorded." in late.content.decode()
    )
    assert FinalLabel.objects.get(railcar=case.railcar).decided_by == other
    assert decided_events() == 1


def test_a_withdrawn_case_says_so_to_a_late_decision(senior, admin_user, case):
    set_policy(key=STD_THRESHOLD, value="5", actor=admin_user)
    client_for(admin_user).post(reverse("adjudication:reapply"))

    late = client_for(senior).post(case_url(case), GOOD, follow=True)

    body = late.content.decode()
    assert "was withdrawn: under the current policies its consensus became final" in body
    assert "Withdrawn" in body
    assert FinalLabel.objects.get(railcar=case.railcar).source == "consensus"


def test_a_senior_who_rated_the_railcar_sees_nothing_of_it_and_cannot_decide(make_case):
    dual = senior_named("dual", Role.ANNOTATOR)
    others = annotators(2, prefix="other")
    case = make_case(raters=[others[0], dual, others[1]])
    client = client_for(dual)

    page = client.get(case_url(case))
    post = client.post(case_url(case), GOOD)
    listing = client.get(reverse("adjudication:queue")).content.decode()

    for response in (page, post):
        assert response.status_code == 403
        body = response.content.decode()
        assert "You rated this railcar yourself" in body
        assert "adj-evidence" not in body and "14.0 %" not in body and "Rater A" not in body
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    row = re.search(rf'<tr data-case="{case.pk}">(.*?)</tr>', listing, re.S).group(1)
    assert "You rated this railcar" in row and "2.00" not in row and "12.0 %" not in row
    assert f'href="{case_url(case)}"' not in listing
    with pytest.raises(decisions.OwnRating):
        decisions.decide(case_id=case.pk, actor=dual, **{**GOOD, "contamination_pct": Decimal(1)})


def test_the_next_case_skips_railcars_the_senior_rated(make_case):
    dual = senior_named("dual", Role.ANNOTATOR)
    others = annotators(2, prefix="other")
    own = make_case(("0.0", "20.0", "40.0"), raters=[others[0], dual, others[1]])
    first, second = make_case(), make_case()

    response = client_for(dual).post(case_url(first), GOOD)

    assert own.disagreement > second.disagreement  # own is the top of the queue ...
    assert response["Location"] == case_url(second)  # ... but not for the one who rated it


def test_a_missing_case_is_404(senior):
    assert client_for(senior).get(reverse("adjudication:case", args=[10**9])).status_code == 404
    assert (
        client_for(senior).post(reverse("adjudication:case", args=[10**9]), GOOD).status_code == 404
    )


@pytest.mark.django_db(transaction=True)
def test_two_seniors_deciding_at_once_give_one_final_label(on_postgresql):
    case = open_case_of(disputed_railcar())
    seniors = [senior_named("first"), senior_named("second")]
    clients: queue.Queue[tuple[User, Client]] = queue.Queue()
    for user in seniors:
        clients.put((user, client_for(user)))
    grades = {"first": "3A", "second": "3AH"}

    def decide() -> tuple[User, Client, object]:
        user, client = clients.get()
        data = {**GOOD, "grade": grades[user.username]}
        return user, client, client.post(case_url(case), data)

    results = run_at_once(decide, threads=2)

    assert sorted(r.status_code for _, _, r in results) == [302, 302]
    label = FinalLabel.objects.get(railcar=case.railcar)
    winner = label.decided_by
    assert label.grade == grades[winner.username]
    assert decided_events() == 1
    (loser_client,) = [c for user, c, _ in results if user != winner]
    (loser_response,) = [r for user, _, r in results if user != winner]
    assert loser_response["Location"] == case_url(case)
    message = loser_client.get(case_url(case)).content.decode()
    assert f"was already decided by {winner.username}" in message
    assert "was not recorded" in message


@pytest.mark.django_db(transaction=True)
def test_reopening_from_the_pages_needs_a_reviewer_a_reason_and_a_final_label(
    client, senior, admin_user, annotator
):
    from tests.adjudication.factories import rated_railcar

    railcar, _ = rated_railcar(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"], prefix="ro")
    url = reverse("adjudication:reopen", args=[railcar.pk])

    client.force_login(annotator)
    assert client.post(url, {"reason": "x"}).status_code == 403
    client.force_login(senior)
    assert client.get(url).status_code == 405
    response = client.post(url, {"reason": ""}, follow=True)
    assert "say why" in response.content.decode()
    assert not AdjudicationCase.objects.filter(railcar=railcar).exists()

    response = client.post(url, {"reason": "<script>alert(1)</script>"})
    case = AdjudicationCase.objects.get(railcar=railcar)
    assert response.status_code == 302
    assert response["Location"] == reverse("adjudication:case", args=[case.pk])
    page = client.get(response["Location"]).content.decode()
    assert "reopened after a final label" in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # the reason, shown escaped

    client.force_login(admin_user)
    timeline = reverse("operations:railcar-timeline", args=[railcar.pk])
    page = client.get(timeline).content.decode()
    assert "Reopened for adjudication: &lt;script&gt;" in page
    assert (
        client.post(reverse("adjudication:reopen", args=[10**9]), {"reason": "x"}).status_code
        == 404
    )


@pytest.mark.django_db(transaction=True)
def test_a_senior_inspector_reads_why_a_case_was_reopened_on_the_case(senior, admin_user):
    from tests.adjudication.factories import rated_railcar

    railcar, _ = rated_railcar(["2.0", "2.1", "2.2"], ["3A", "3A", "3A"], prefix="rn")
    case = decisions.reopen(railcar_id=railcar.pk, actor=admin_user, reason="soil under snow")
    client = Client()
    client.force_login(senior)

    page = client.get(reverse("adjudication:case", args=[case.pk])).content.decode()

    assert "Reopened</strong> by boss" in page
    assert "<q>soil under snow</q>" in page
    assert client.get(reverse("audit-trail")).status_code == 403  # the page is the only way
