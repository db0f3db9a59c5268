"""The annotator's ways out of a railcar, and the lease's end: a release with a reason code, no
rating of a railcar whose every frame is excluded, no rating after the lease, no cached pages."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling import annotation, pool
from labeling.models import Assignment, Railcar, Rating
from scrapannot.models import AuditEvent
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db
API = "/api/v1/assignments"


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    return client


def rate(client: APIClient, uid):
    body = {"contamination_pct": "0.0", "grade": "3A", "seconds_spent": 30}
    return client.post(f"{API}/{uid}/rating/", body, format="json")


def exclude_every_frame(assignment: Assignment, annotator) -> None:
    for frame in assignment.railcar.frames.all():
        annotation.exclude_frame(
            uid=assignment.uid, annotator=annotator, frame_uid=frame.uid, code="dark"
        )


def end_lease(assignment: Assignment) -> None:
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_release_records_its_reason_code_and_note_and_returns_the_slot():
    railcar = pool_railcar(raters=1)
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)

    response = api(a).post(
        f"{API}/{held.uid}/release/", {"reason": "wrong_railcar", "note": "empty car"}
    )

    assert response.status_code == 204
    held.refresh_from_db()
    assert (held.status, held.release_reason) == ("released", "wrong_railcar: empty car")
    event = AuditEvent.objects.get(action="assignment.released")
    assert (event.actor, event.payload) == (a, {"reason": "wrong_railcar", "note": "empty car"})
    assert Railcar.objects.get(pk=railcar.pk).open_slots == 1


def test_a_release_needs_a_reason_from_the_list_and_a_note_for_other():
    pool_railcar()
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid
    client = api(a)

    unknown = client.post(f"{API}/{uid}/release/", {"reason": "tired"})
    bare_other = client.post(f"{API}/{uid}/release/", {"reason": "other", "note": " "})

    assert unknown.status_code == 400 and "reason" in unknown.json()
    assert bare_other.status_code == 400 and "note" in bare_other.json()
    assert Assignment.objects.get(uid=uid).status == "active"
    assert not AuditEvent.objects.filter(action="assignment.released").exists()


def test_a_railcar_whose_every_frame_is_excluded_cannot_be_rated_but_can_be_released():
    pool_railcar(layers=1, frames_per_layer=2)
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    exclude_every_frame(held, a)
    client = api(a)

    refused = rate(client, held.uid)

    assert refused.status_code == 400
    assert "frames_unusable" in refused.json()["frames"][0]
    assert not Rating.objects.exists()
    released = client.post(f"{API}/{held.uid}/release/", {"reason": "frames_unusable"})
    assert released.status_code == 204


def test_one_frame_left_is_enough_to_rate():
    railcar = pool_railcar(layers=1, frames_per_layer=2)
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    first = railcar.frames.order_by("index").first()
    annotation.exclude_frame(uid=held.uid, annotator=a, frame_uid=first.uid, code="blur")

    assert rate(api(a), held.uid).status_code == 201


def test_a_rating_before_the_lease_ends_is_recorded():
    pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    Assignment.objects.filter(pk=held.pk).update(
        lease_expires_at=timezone.now() + timedelta(seconds=20)
    )

    assert rate(api(a), held.uid).status_code == 201


def test_a_rating_after_the_lease_ends_is_refused_with_409_even_before_the_sweep():
    pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    end_lease(held)
    client = api(a)

    late = rate(client, held.uid)

    assert late.status_code == 409
    assert "lease on this railcar has ended" in late.json()["detail"]
    assert not Rating.objects.exists()
    detail = client.get(f"{API}/{held.uid}/").json()
    assert (detail["status"], detail["seconds_left"]) == ("expired", 0)


def test_nothing_else_is_saved_after_the_lease_ends_either():
    railcar = pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    end_lease(held)
    frame = railcar.frames.first()

    response = api(a).put(
        f"{API}/{held.uid}/frames/{frame.uid}/exclusion/", {"code": "blur"}, format="json"
    )

    assert response.status_code == 409
    assert not held.exclusions.exists()


def test_a_rating_sent_again_after_the_lease_ends_still_answers_the_recorded_one():
    pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    client = api(a)
    assert rate(client, held.uid).status_code == 201
    end_lease(held)

    assert rate(client, held.uid).status_code == 200


def test_the_detail_says_how_long_the_lease_has_left_by_the_servers_clock():
    pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)

    detail = api(a).get(f"{API}/{held.uid}/").json()

    assert detail["status"] == "active"
    assert 29 * 60 < detail["seconds_left"] <= 30 * 60


def test_the_workspace_the_queue_and_the_annotator_api_are_never_cached():
    pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    page = Client()
    page.force_login(a)

    answers = [
        page.get("/annotate/"),
        page.get(f"/annotate/{held.uid}/"),
        page.get(f"{API}/{held.uid}/"),
    ]

    for answer in answers:
        assert answer.status_code == 200
        assert "no-store" in answer["Cache-Control"]


def test_another_annotator_cannot_release_a_railcar_they_do_not_hold():
    pool_railcar()
    a, b = annotators(2)
    held = pool.next_assignment(annotator=a)

    response = api(b).post(f"{API}/{held.uid}/release/", {"reason": "cannot_judge"})

    assert response.status_code == 404
    assert Assignment.objects.get(pk=held.pk).status == "active"


@pytest.mark.parametrize("who", ["senior", "admin_user", "outsider"])
def test_only_annotators_may_release(who, request):
    pool_railcar()
    (a,) = annotators(1)
    held = pool.next_assignment(annotator=a)
    user = request.getfixturevalue(who)

    response = api(user).post(f"{API}/{held.uid}/release/", {"reason": "cannot_judge"})

    assert response.status_code == 403


def test_opening_the_take_next_address_shows_the_queue_and_takes_no_lease():
    pool_railcar()
    (annotator,) = annotators(1, prefix="opener")
    client = Client()
    client.force_login(annotator)

    answer = client.get("/annotate/next/")

    assert answer.status_code == 302 and answer["Location"] == "/annotate/"
    assert not Assignment.objects.filter(annotator=annotator).exists()
    assert client.post("/annotate/next/").status_code == 302  # the button still takes one
    assert Assignment.objects.filter(annotator=annotator).count() == 1
