"""The request plumbing cut for the annotator loop answers as Django and DRF did: JSON chosen at
once only where DRF would choose it, and message storage built only when a page uses it."""

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db
NEXT = "/api/v1/assignments/next/"


@pytest.mark.parametrize(
    ("accept", "status", "content_type"),
    [
        (None, 200, "application/json"),
        ("*/*", 200, "application/json"),
        ("application/json", 200, "application/json"),
        ("application/json; indent=4", 200, "application/json"),
        ("text/html, application/json;q=0.9", 200, "application/json"),
        ("text/html", 406, "application/json"),
        ("", 406, "application/json"),
    ],
)
def test_an_api_call_negotiates_as_drf_does(accept, status, content_type):
    pool_railcar()
    (rater,) = annotators(1)
    client = APIClient()
    client.force_authenticate(rater)
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}

    response = client.post(NEXT, **headers)

    assert response.status_code == status, response.content
    assert response["Content-Type"] == content_type
    assert response.json()


def test_an_unknown_format_override_is_still_refused():
    (rater,) = annotators(1)
    client = APIClient()
    client.force_authenticate(rater)

    assert client.post(NEXT + "?format=xml").status_code == 404


def test_an_api_call_leaves_no_messages_cookie_and_a_page_still_shows_its_message(admin_user):
    pool_railcar()
    (rater,) = annotators(1)
    api = APIClient()
    api.force_authenticate(rater)
    page = Client()
    page.force_login(admin_user)

    answered = api.post(NEXT)
    saved = page.post(reverse("policies"), {"key": "quality.max_haze", "value": "0.4"})
    shown = page.get(saved["Location"])
    again = page.get(saved["Location"])

    assert answered.status_code == 200 and "messages" not in answered.cookies
    assert "quality.max_haze saved." in shown.content.decode()
    assert "quality.max_haze saved." not in again.content.decode()  # shown once, then gone
