"""Swagger UI and ReDoc, for admins, with their scripts served by the app itself."""

import re

import pytest
from django.urls import reverse

from tests.conftest import client_for

DOCS = ["api-docs", "api-redoc"]


@pytest.mark.parametrize("name", DOCS)
def test_admins_get_the_docs_with_scripts_from_the_app_not_a_cdn(name, admin_user):
    response = client_for(admin_user).get(reverse(name))

    body = response.content.decode()
    assert response.status_code == 200
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', body)
    assert scripts and all(src.startswith("/static/drf_spectacular_sidecar/") for src in scripts)
    assert "cdn.jsdelivr.net" not in body


@pytest.mark.parametrize("name", DOCS)
@pytest.mark.parametrize("who", ["senior", "annotator", "outsider", "plant"])
def test_nobody_else_gets_them(name, who, request):
    response = client_for(request.getfixturevalue(who)).get(reverse(name))
    assert response.status_code == 403


@pytest.mark.parametrize("name", DOCS)
def test_anonymous_visitors_are_sent_to_log_in(name, client):
    response = client.get(reverse(name))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_the_admin_pages_link_the_docs(admin_user, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "root-pass-1")
    admin_index = client_for(root).get(reverse("admin:index")).content.decode()
    home = client_for(admin_user).get(reverse("home")).content.decode()
    for page in (admin_index, home):
        assert reverse("api-docs") in page
    assert reverse("api-redoc") in admin_index
