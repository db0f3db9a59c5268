"""API tokens are read with their user's roles in one query; roles still count per request."""

import pytest
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from scrapannot.roles import Role
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db
NEXT = "/api/v1/assignments/next/"
RATE = "/api/v1/assignments/{}/rating/"


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def test_a_role_taken_away_stops_working_on_the_next_call():
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


def test_a_fresh_lease_answers_empty_work_without_looking(django_assert_num_queries):
    (rater,) = annotators(1)
    railcar = pool_railcar(raters=1)
    client = token_client(rater)

    # Token with roles (1), held lease (1), pool policies (1), the lease's transaction (8),
    # the frames (1): no exclusions, masks or rating to look for on a lease taken just now.
    with django_assert_num_queries(12):
        fresh = client.post(NEXT).json()

    assert (fresh["exclusions"], fresh["masks"], fresh["rating"]) == ([], [], None)
    frame = railcar.frames.order_by("index").first()
    put = client.put(f"/api/v1/assignments/{fresh['id']}/frames/{frame.uid}/exclusion/",
                     {"code": "blur"}, format="json")  # fmt: skip
    assert put.status_code == 200, put.content
    held = client.post(NEXT).json()
    assert held["id"] == fresh["id"] and [e["code"] for e in held["exclusions"]] == ["blur"]
