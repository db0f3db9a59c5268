"""API tokens are read with their user's roles in one query, and kept by each process for a
short while (API_TOKEN_CACHE_SECONDS): a removed role stops working once that time is over."""

import time

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scrapannot.policy import set_policy
from scrapannot.roles import Role
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db
NEXT = "/api/v1/assignments/next/"
RATE = "/api/v1/assignments/{}/rating/"
RATING = {"contamination_pct": "5.0", "grade": "3A", "seconds_spent": 40}


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def short_token_cache(settings) -> float:
    settings.API_TOKEN_CACHE_SECONDS = 0.2
    return settings.API_TOKEN_CACHE_SECONDS


def test_a_role_taken_away_stops_working_once_the_token_cache_time_is_over(short_token_cache):
    (rater,) = annotators(1)
    pool_railcar(raters=1)
    client = token_client(rater)
    assert client.post(NEXT).status_code == 200

    rater.groups.remove(Group.objects.get(name=Role.ANNOTATOR.value))
    time.sleep(short_token_cache * 1.5)

    assert client.post(NEXT).status_code == 403


def test_a_deactivated_user_is_refused_once_the_token_cache_time_is_over(short_token_cache):
    (rater,) = annotators(1)
    pool_railcar(raters=1)
    client = token_client(rater)
    assert client.post(NEXT).status_code == 200

    rater.is_active = False
    rater.save()
    time.sleep(short_token_cache * 1.5)

    assert client.post(NEXT).status_code == 401


def test_within_the_token_cache_time_the_token_and_roles_are_not_read_again(
    settings, django_assert_num_queries
):
    settings.API_TOKEN_CACHE_SECONDS = 60
    (rater,) = annotators(1)
    pool_railcar(raters=1)
    client = token_client(rater)
    uid = client.post(NEXT).json()["id"]
    rater.groups.remove(Group.objects.get(name=Role.ANNOTATOR.value))

    # The held lease's detail: the assignment, its exclusions, masks and rating, its frames;
    # no token query, and the role removed a moment ago still counts (within the minute).
    with django_assert_num_queries(5):
        assert client.get(f"/api/v1/assignments/{uid}/").status_code == 200


def test_with_no_token_cache_a_role_taken_away_stops_working_on_the_next_call(settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    (rater,) = annotators(1)
    pool_railcar(raters=1)
    client = token_client(rater)
    assert client.post(NEXT).status_code == 200

    rater.groups.remove(Group.objects.get(name=Role.ANNOTATOR.value))

    assert client.post(NEXT).status_code == 403


def test_an_unknown_token_or_an_inactive_user_is_refused():
    (rater,) = annotators(1)
    client = token_client(rater)
    rater.is_active = False
    rater.save()

    assert client.post(NEXT).status_code == 401
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert stranger.post(NEXT).status_code == 401


def test_a_user_without_any_group_has_no_role():
    (rater,) = annotators(1)
    rater.groups.clear()

    assert token_client(rater).post(NEXT).status_code == 403


# Token with roles (1), the frames (1), and on the ORM path the pool policies (1), the held lease
# (1) and the lease's transaction (8); on the SQL path the transaction is the lease function,
# which reads the policies itself, and the audit event (4 with the savepoint and its release).
# No exclusions, masks or rating to look for on a lease taken just now.
@pytest.mark.parametrize(
    ("pool_path", "queries"), [("sql", 6), ("orm", 12)], indirect=["pool_path"]
)
def test_a_fresh_lease_answers_empty_work_without_looking(
    pool_path, queries, django_assert_num_queries
):
    (rater,) = annotators(1)
    railcar = pool_railcar(raters=1)
    client = token_client(rater)
    # No gold roll: on the ORM path a roll that comes up gold costs one query more.
    set_policy(key="pool.gold_share", value=0.0, actor=None)

    with django_assert_num_queries(queries):
        fresh = client.post(NEXT).json()

    assert (fresh["exclusions"], fresh["masks"], fresh["rating"]) == ([], [], None)
    frame = railcar.frames.order_by("index").first()
    put = client.put(f"/api/v1/assignments/{fresh['id']}/frames/{frame.uid}/exclusion/",
                     {"code": "blur"}, format="json")  # fmt: skip
    assert put.status_code == 200, put.content
    held = client.post(NEXT).json()
    assert held["id"] == fresh["id"] and [e["code"] for e in held["exclusions"]] == ["blur"]


@pytest.mark.parametrize(
    ("pool_path", "queries"), [("sql", 5), ("orm", 12)], indirect=["pool_path"]
)
def test_a_rating_takes_one_function_call_on_the_sql_path(
    pool_path, queries, django_assert_num_queries
):
    (rater,) = annotators(1)
    pool_railcar(raters=1)
    client = token_client(rater)
    uid = client.post(NEXT).json()["id"]

    # SQL path: savepoint, the rating function, two audit events (rating, railcar rated: the
    # last rating closes it), release. The token was read by the call before.
    with django_assert_num_queries(queries):
        response = client.post(RATE.format(uid), RATING, format="json")

    assert response.status_code == 201
    assert client.post(RATE.format(uid), RATING, format="json").json() == response.json()
