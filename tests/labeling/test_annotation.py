from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling import annotation, pool
from labeling.models import Assignment, FrameExclusion, Railcar, Rating
from labeling.signals import railcar_rated
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators, pool_railcar

# Each test runs on both paths: the PL/pgSQL functions and the ORM (tests/conftest.py).
pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pool_path")]

FORBIDDEN_FIELDS = {"railcar", "real_id", "line", "camera", "captured_at", "annotator", "slot"}


def api(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0]}")
    return client


def rate(client: APIClient, uid, **values):
    body = {"contamination_pct": "4.5", "grade": "3A", "seconds_spent": 90} | values
    return client.post(f"/api/v1/assignments/{uid}/rating/", body, format="json")


def test_next_returns_the_work_without_anything_that_identifies_the_railcar():
    railcar = pool_railcar(layers=2, frames_per_layer=2)
    (a,) = annotators(1)

    response = api(a).post("/api/v1/assignments/next/")

    assert response.status_code == 200
    body = response.json()
    assert not FORBIDDEN_FIELDS & set(body)
    assert [len(layer["frames"]) for layer in body["layers"]] == [2, 2]
    keyframe = railcar.layers.get(index=1).keyframe
    assert body["layers"][0]["frames"][0]["id"] == str(keyframe.uid)
    text = response.content.decode()
    for secret in (railcar.real_id, railcar.line, railcar.camera, "2026-11-21T0", str(railcar.uid)):
        assert secret not in text


def test_next_answers_204_when_there_is_no_work():
    (a,) = annotators(1)

    assert api(a).post("/api/v1/assignments/next/").status_code == 204


@pytest.mark.parametrize("who", ["senior", "admin_user", "outsider", "plant"])
def test_only_annotators_get_work(who, request):
    pool_railcar()
    user = request.getfixturevalue(who)

    assert api(user).post("/api/v1/assignments/next/").status_code == 403
    assert not Assignment.objects.exists()


def test_a_submitted_rating_is_recorded_once_however_often_it_is_sent():
    pool_railcar()
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid
    client = api(a)

    first = rate(client, uid, contamination_pct="12.3")
    again = rate(client, uid, contamination_pct="50.0")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["contamination_pct"] == "12.3"
    assert Rating.objects.get().contamination_pct == Decimal("12.3")
    assert AuditEvent.objects.filter(action="rating.submitted").count() == 1


@pytest.mark.parametrize(
    "values",
    [
        {"contamination_pct": "100.1"},
        {"contamination_pct": "-0.1"},
        {"contamination_pct": "12.34"},
        {"contamination_pct": "NaN"},
        {"contamination_pct": "1e3"},
        {"contamination_pct": "twelve"},
        {"grade": "4B"},
        {"grade": ""},
        {"seconds_spent": -1},
        {"seconds_spent": "forever"},
    ],
)
def test_an_invalid_rating_gets_a_400_and_records_nothing(values):
    pool_railcar()
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid

    response = rate(api(a), uid, **values)

    assert response.status_code == 400
    assert set(response.json()) <= {"contamination_pct", "grade", "seconds_spent"}
    assert not Rating.objects.exists()


def test_someone_elses_assignment_is_a_404_like_one_that_does_not_exist():
    pool_railcar()
    a, b = annotators(2)
    uid = pool.next_assignment(annotator=a).uid

    theirs = rate(api(b), uid)
    nothing = rate(api(b), "00000000-0000-4000-8000-000000000000")

    assert theirs.status_code == nothing.status_code == 404
    assert theirs.content == nothing.content
    assert not Rating.objects.exists()


def test_the_last_rating_closes_the_railcar_and_announces_it(django_capture_on_commit_callbacks):
    railcar = pool_railcar(raters=3)
    raters = annotators(3)
    announced: list[int] = []

    def listener(sender: object, railcar_id: int, **kwargs: object) -> None:
        announced.append(railcar_id)

    railcar_rated.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            for person in raters:
                annotation.submit_rating(
                    uid=pool.next_assignment(annotator=person).uid, annotator=person,
                    contamination_pct=Decimal("3.0"), grade="3A1", seconds_spent=30,
                )  # fmt: skip
    finally:
        railcar_rated.disconnect(listener)

    railcar.refresh_from_db()
    # Rated, then (on the same commit) aggregated by adjudication, which listens to the signal.
    assert railcar.status == Railcar.Status.LABELED
    assert announced == [railcar.pk]
    assert AuditEvent.objects.filter(action="railcar.rated").count() == 1


def test_an_annotator_excludes_a_frame_of_their_railcar_only():
    mine = pool_railcar()
    other = pool_railcar()
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid
    assert Assignment.objects.get(uid=uid).railcar == mine
    my_frame = mine.frames.first()
    url = f"/api/v1/assignments/{uid}/frames/{{}}/exclusion/"

    ok = api(a).put(url.format(my_frame.uid), {"code": "blur", "note": "smeared"}, format="json")
    foreign = api(a).put(url.format(other.frames.first().uid), {"code": "blur"}, format="json")
    bad_code = api(a).put(url.format(my_frame.uid), {"code": "ugly"}, format="json")

    assert ok.status_code == 200 and foreign.status_code == 404 and bad_code.status_code == 400
    assert FrameExclusion.objects.get().frame == my_frame
    assert AuditEvent.objects.get(action="frame.excluded").payload["code"] == "blur"
    assert api(a).delete(url.format(my_frame.uid)).status_code == 204
    assert not FrameExclusion.objects.exists()


def test_the_holder_gets_the_frame_image_and_nobody_else_does():
    railcar = pool_railcar()
    a, b = annotators(2)
    uid = pool.next_assignment(annotator=a).uid
    frame = railcar.frames.first()
    url = f"/api/v1/assignments/{uid}/frames/{frame.uid}/image/"

    mine = api(a).get(url)
    theirs = api(b).get(url)

    assert mine.status_code == 200 and mine["Content-Type"] == "image/jpeg"
    assert mine.content[:2] == b"\xff\xd8"
    assert theirs.status_code == 404
    assert railcar.real_id not in str(mine.headers)


def test_after_release_or_submit_the_assignment_accepts_no_more_work():
    pool_railcar()
    pool_railcar()
    (a,) = annotators(1)
    client = api(a)
    uid = pool.next_assignment(annotator=a).uid
    release = f"/api/v1/assignments/{uid}/release/"
    assert client.post(release, {"reason": "frames_unusable"}).status_code == 204

    assert rate(client, uid).status_code == 409
    assert client.post(release, {"reason": "cannot_judge"}).status_code == 409


@pytest.mark.django_db(transaction=True)
def test_a_double_click_sent_twice_at_once_records_one_rating(on_postgresql):
    pool_railcar(with_files=False)
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid
    token = Token.objects.create(user=a).key

    def submit() -> int:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        return rate(client, uid).status_code

    statuses = run_at_once(submit, threads=6)

    assert sorted(statuses) == [200] * 5 + [201]
    assert Rating.objects.count() == 1


def _mask_urls(uid, frame) -> tuple[str, str]:
    base = f"/api/v1/assignments/{uid}/frames/{frame.uid}"
    return f"{base}/mask-proposals/", f"{base}/masks/"


def test_an_annotator_proposes_accepts_and_deletes_a_mask():
    railcar = pool_railcar()
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid
    frame = railcar.frames.first()
    propose, create = _mask_urls(uid, frame)
    prompts = {"points": [[40, 25]], "labels": [1], "box": [20, 10, 70, 45]}

    proposal = api(a).post(propose, {"prompts": prompts}, format="json")

    assert proposal.status_code == 200, proposal.content
    body = proposal.json()
    assert body["rle"]["size"] == [54, 96] and body["area"] > 0
    saved = api(a).post(
        create, {"rle": body["rle"], "prompts": prompts, "engine": body["engine"]}, format="json"
    )
    assert saved.status_code == 201
    mask = Assignment.objects.get(uid=uid).masks.get()
    assert mask.area == body["area"] and mask.prompts["box"] == [20, 10, 70, 45]
    assert AuditEvent.objects.get(action="mask.saved").payload["area"] == body["area"]
    deleted = api(a).delete(f"/api/v1/assignments/{uid}/masks/{mask.uid}/")
    assert deleted.status_code == 204 and not Assignment.objects.get(uid=uid).masks.exists()


@pytest.mark.parametrize(
    "prompts",
    [
        {"points": [[1e9, 5]], "labels": [1]},
        {"points": [["nan", 5]], "labels": [1]},
        {"points": [[5, 5]], "labels": [7]},
        {"points": [[5, 5]] * 100, "labels": [1] * 100},
        {"points": [], "labels": []},
        {"box": [50, 10, 20, 40]},
        "not an object",
    ],
)
def test_nonsense_prompts_get_a_400(prompts):
    railcar = pool_railcar()
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid
    propose, _ = _mask_urls(uid, railcar.frames.first())

    response = api(a).post(propose, {"prompts": prompts}, format="json")

    assert response.status_code == 400
    assert "prompts" in response.json()


@pytest.mark.parametrize(
    "rle",
    [
        {"size": [100000, 100000], "counts": "0"},
        {"size": [54, 96], "counts": "garbage!"},
        {"size": [54, 96], "counts": [10, 10]},
        {"size": [54, 96], "counts": [54 * 96]},
        "not an rle",
    ],
    ids=["forged size", "bad string", "short counts", "empty mask", "not an object"],
)
def test_a_forged_or_broken_mask_is_refused(rle):
    railcar = pool_railcar()
    (a,) = annotators(1)
    uid = pool.next_assignment(annotator=a).uid
    _, create = _mask_urls(uid, railcar.frames.first())

    response = api(a).post(
        create, {"rle": rle, "prompts": {"box": [1, 1, 20, 20]}, "engine": "grabcut"}, format="json"
    )

    assert response.status_code == 400
    assert not Assignment.objects.get(uid=uid).masks.exists()


def test_the_audit_trail_of_a_lease_and_a_rating_is_the_same_on_either_path(pool_path):
    railcar = pool_railcar(raters=1)
    (a,) = annotators(1)
    lease = pool.next_assignment(annotator=a)
    rating, created = annotation.submit_rating(
        uid=lease.uid, annotator=a, contamination_pct=Decimal("7.5"), grade="3A1", seconds_spent=33
    )

    leased, rated, closed = AuditEvent.objects.order_by("id")
    assert (leased.action, leased.actor_id, leased.object_id) == (
        "assignment.leased", a.pk, str(lease.pk)
    )  # fmt: skip
    assert leased.payload == {
        "railcar": railcar.pk, "slot": 1, "expires_at": lease.lease_expires_at.isoformat(),
        "random_pick": False, "gold_pick": False,
    }  # fmt: skip
    assert created and (rated.action, rated.object_type) == ("rating.submitted", "labeling.rating")
    assert rated.object_id == str(rating.pk) == str(Rating.objects.get().pk)
    assert rated.payload == {
        "assignment": lease.pk, "contamination_pct": "7.5", "grade": "3A1", "seconds_spent": 33,
        "excluded_frames": 0, "masks": 0,
    }  # fmt: skip
    assert (closed.action, closed.object_id, closed.payload) == (
        "railcar.rated", str(railcar.pk), {"ratings": 1}
    )  # fmt: skip
    railcar.refresh_from_db()
    assert railcar.status == Railcar.Status.RATED


def test_on_postgresql_the_sql_path_is_the_one_taken_unless_turned_off(
    pool_path, django_assert_num_queries
):
    pool_railcar(raters=1)
    (a,) = annotators(1)
    # No gold roll: on the ORM path a roll that comes up gold costs one query more.
    set_policy(key="pool.gold_share", value=0.0, actor=None)

    # SQL path: in a savepoint, the function (which reads the policies) and the audit event. The
    # ORM path reads the policies, looks for a held lease, and takes the lease in six statements.
    with django_assert_num_queries(4 if pool_path == "sql" else 10):
        pool.next_assignment(annotator=a)
