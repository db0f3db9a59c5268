"""Who reaches the senior inspectors' adjudication pages: the queue, a case, its frames, the
reapply action."""

import uuid

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from adjudication.models import AdjudicationCase, FinalLabel
from adjudication.policies import STD_THRESHOLD
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.adjudication.disputes import GOOD, case_url, image_url
from tests.conftest import client_for

pytestmark = pytest.mark.usefixtures("fast_password_hashing")


# Who gets in


@pytest.mark.parametrize("who", ["anonymous", "annotator", "plant", "outsider"])
def test_nobody_but_senior_inspectors_and_admins_reaches_any_adjudication_page(who, request, case):
    user = None if who == "anonymous" else request.getfixturevalue(who)
    client = client_for(user)
    frame = case.railcar.frames.first()
    gets = [reverse("adjudication:queue"), case_url(case), image_url(case, frame.uid)]
    posts = [(case_url(case), GOOD), (reverse("adjudication:reapply"), {})]

    answers = [client.get(url) for url in gets] + [client.post(url, data) for url, data in posts]

    for response in answers:
        if user is None:
            assert response.status_code == 302
            assert response["Location"].startswith(reverse("login"))
        else:
            assert response.status_code == 403
        assert str(case.railcar.uid).encode() not in response.content
    assert not FinalLabel.objects.filter(railcar=case.railcar).exists()
    assert not AuditEvent.objects.filter(action="aggregation.reapplied").exists()


@pytest.mark.parametrize("who", ["senior", "admin_user"])
def test_senior_inspectors_and_admins_see_the_queue_the_case_and_its_frames(who, request, case):
    client = client_for(request.getfixturevalue(who))
    frame = case.railcar.frames.first()

    assert client.get(reverse("adjudication:queue")).status_code == 200
    assert client.get(case_url(case)).status_code == 200
    assert client.get(image_url(case, frame.uid)).status_code == 200


def test_only_admins_may_reapply_the_aggregation_policies(senior, admin_user, case):
    set_policy(key=STD_THRESHOLD, value="5", actor=admin_user)

    refused = client_for(senior).post(reverse("adjudication:reapply"))
    assert refused.status_code == 403
    assert client_for(senior).get(reverse("adjudication:reapply")).status_code == 403
    assert client_for(admin_user).get(reverse("adjudication:reapply")).status_code == 200
    assert not AuditEvent.objects.filter(action="aggregation.reapplied").exists()
    response = client_for(admin_user).post(reverse("adjudication:reapply"), follow=True)

    case.refresh_from_db()
    assert case.status == AdjudicationCase.Status.WITHDRAWN
    assert AuditEvent.objects.get(action="aggregation.reapplied").actor == admin_user
    assert "re-applied to 1 railcar(s) not yet final: 1 became final" in response.content.decode()
    assert b"Re-apply aggregation policies" in response.content
    assert (
        b"Re-apply aggregation policies"
        not in client_for(senior).get(reverse("adjudication:queue")).content
    )


def test_a_frame_image_is_served_only_for_a_frame_of_that_cases_railcar(senior, make_case):
    case, other = make_case(), make_case()
    frame = case.railcar.frames.order_by("index").first()
    client = client_for(senior)

    response = client.get(image_url(case, frame.uid))

    with default_storage.open(frame.file.name, "rb") as handle:
        assert response.content == handle.read()
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == "inline; filename=frame"
    assert not response.has_header("ETag") and not response.has_header("Last-Modified")
    foreign = other.railcar.frames.first()
    assert client.get(image_url(case, foreign.uid)).status_code == 404
    assert client.get(image_url(case, uuid.uuid4())).status_code == 404
    assert client.get(image_url(AdjudicationCase(pk=10**9), frame.uid)).status_code == 404
    default_storage.delete(frame.file.name)
    assert client.get(image_url(case, frame.uid)).status_code == 404
