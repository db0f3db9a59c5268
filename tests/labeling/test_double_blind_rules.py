"""Double-blind's rules attacked directly: a fourth rating by a direct POST, double submits, a late
rating racing its lease's expiry, and many annotators at once on PostgreSQL.
"""

import queue
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db.models import Count
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import Assignment, Railcar, Rating
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators, pool_railcar
from tests.labeling.probe import API

pytestmark = pytest.mark.django_db


# --- breaking the rules by direct API calls ----------------------------------------------------


def _client_of(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _rating(value: str = "12.5", grade: str = "3A") -> dict[str, Any]:
    return {"contamination_pct": value, "grade": grade, "seconds_spent": 30}


def test_a_fourth_annotator_cannot_rate_someone_elses_assignment_by_a_direct_post():
    pool_railcar(raters=3, with_files=False)
    a, b, c, d = annotators(4)
    held = [_client_of(u).post(f"{API}/next/").json()["id"] for u in (a, b, c)]

    for uid in held:
        assert _client_of(d).post(f"{API}/{uid}/rating/", _rating()).status_code == 404
    assert _client_of(d).post(f"{API}/next/").status_code == 204

    assert not Rating.objects.exists()
    assert set(Assignment.objects.values_list("status", flat=True)) == {"active"}


def test_submitting_again_returns_the_first_rating_unchanged():
    pool_railcar(raters=3, with_files=False)
    (a,) = annotators(1)
    client = _client_of(a)
    uid = client.post(f"{API}/next/").json()["id"]

    first = client.post(f"{API}/{uid}/rating/", _rating("12.5", "3A"))
    again = client.post(f"{API}/{uid}/rating/", _rating("99.0", "cast iron"))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() == {"contamination_pct": "12.5", "grade": "3A"}
    assert Rating.objects.get().contamination_pct == Decimal("12.5")


def test_after_three_ratings_a_fourth_and_fifth_annotator_cannot_add_a_rating():
    full = pool_railcar(raters=3, priority=1.0, with_files=False)
    other = pool_railcar(raters=3, with_files=False)
    people = annotators(5)
    uids = []
    for person in people[:3]:
        client = _client_of(person)
        uids.append(client.post(f"{API}/next/").json()["id"])
        assert client.post(f"{API}/{uids[-1]}/rating/", _rating()).status_code == 201

    for late in people[3:]:
        client = _client_of(late)
        assert Assignment.objects.get(uid=client.post(f"{API}/next/").json()["id"]).railcar == other
        for uid in uids:
            assert client.post(f"{API}/{uid}/rating/", _rating()).status_code == 404

    full.refresh_from_db()
    assert full.status == Railcar.Status.RATED
    assert full.ratings.count() == full.ratings.values("annotator").distinct().count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submits_record_one_rating(on_postgresql):
    pool_railcar(raters=3, with_files=False)
    (a,) = annotators(1)
    uid = _client_of(a).post(f"{API}/next/").json()["id"]
    values = queue.SimpleQueue()
    for k in range(8):
        values.put(f"{10 + k}.5")

    def submit() -> tuple[int, dict]:
        response = _client_of(a).post(f"{API}/{uid}/rating/", _rating(values.get_nowait()))
        return response.status_code, response.json()

    got = run_at_once(submit, threads=8)

    assert sorted(status for status, _ in got) == [200] * 7 + [201]
    stored = Rating.objects.get()
    assert {body["contamination_pct"] for _, body in got} == {str(stored.contamination_pct)}


@pytest.mark.django_db(transaction=True)
def test_a_late_rating_racing_its_lease_expiry_never_makes_a_fourth(on_postgresql):
    railcar = pool_railcar(raters=3, with_files=False)
    late, fresh = annotators(3, prefix="late"), annotators(3, prefix="fresh")
    held = {u.pk: _client_of(u).post(f"{API}/next/").json()["id"] for u in late}
    Assignment.objects.update(lease_expires_at=timezone.now())
    work = queue.SimpleQueue()
    for user in late + fresh:
        work.put(user)

    def act() -> int:
        user = work.get_nowait()
        client = _client_of(user)
        if user.pk not in held:  # a fresh annotator: take an expired slot, then rate it
            response = client.post(f"{API}/next/")
            if response.status_code != 200:
                return response.status_code
            held[user.pk] = response.json()["id"]
        return client.post(f"{API}/{held[user.pk]}/rating/", _rating()).status_code

    statuses = run_at_once(act, threads=6)

    assert set(statuses) <= {201, 204, 409}
    ratings = Rating.objects.filter(railcar=railcar)
    assert ratings.count() == statuses.count(201) <= 3
    assert ratings.values("annotator").distinct().count() == ratings.count()
    holding = Assignment.objects.filter(railcar=railcar, status__in=Assignment.HOLDING)
    assert holding.values("slot").distinct().count() == holding.count() <= 3
    railcar.refresh_from_db()
    assert railcar.open_slots == 3 - holding.count()


@pytest.mark.django_db(transaction=True)
def test_many_annotators_asking_for_next_through_the_api_at_once_never_over_assign(on_postgresql):
    railcars = [pool_railcar(raters=3, with_files=False) for _ in range(6)]
    people = queue.SimpleQueue()
    for person in annotators(32):
        people.put(person)

    got = run_at_once(lambda: _client_of(people.get_nowait()).post(f"{API}/next/"), threads=32)

    assert sorted(r.status_code for r in got) == [200] * 18 + [204] * 14
    assert len({r.json()["pseudonym"] for r in got if r.status_code == 200}) == 18
    for railcar in railcars:
        assignments = Assignment.objects.filter(railcar=railcar)
        assert assignments.values("annotator").distinct().count() == assignments.count() == 3
        assert sorted(assignments.values_list("slot", flat=True)) == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_many_annotators_looping_next_and_rate_at_once_never_break_the_rules(on_postgresql):
    railcars = [pool_railcar(raters=3, with_files=False) for _ in range(10)]
    people = queue.SimpleQueue()
    for person in annotators(32):
        people.put(person)

    def next_and_rate_until_no_work() -> list[int]:
        client, statuses = _client_of(people.get_nowait()), []
        while (response := client.post(f"{API}/next/")).status_code == 200:
            rated = client.post(f"{API}/{response.json()['id']}/rating/", _rating())
            statuses += [200, rated.status_code]
        return [*statuses, response.status_code]

    got = run_at_once(next_and_rate_until_no_work, threads=32)

    assert {status for statuses in got for status in statuses} <= {200, 201, 204}
    assert sum(statuses.count(201) for statuses in got) == 3 * len(railcars)
    per_railcar = Rating.objects.values("railcar").annotate(n=Count("id"))
    assert sorted(r["n"] for r in per_railcar) == [3] * len(railcars)
    assert not Rating.objects.values("railcar", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    # Every railcar closed once its third rating was in, then aggregated (on that commit).
    assert Railcar.objects.filter(
        status__in=["labeled", "in_adjudication"], open_slots=0
    ).count() == len(railcars)
