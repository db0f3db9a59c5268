"""/healthz: what a load balancer and a monitor read from it."""

import pytest
from django.test import Client

from scrapannot import health

pytestmark = pytest.mark.django_db


@pytest.fixture
def real_broker(settings, monkeypatch):
    """Tasks go through a broker (not in-process), and the cached broker answer is forgotten."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    monkeypatch.setattr(health, "_broker_cache", (-health.BROKER_CACHE_S, ""))


def test_it_answers_200_when_the_database_answers():
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"ok": True, "database": "ok", "broker": "in-process"}


def test_it_checks_the_broker(real_broker):
    response = Client().get("/healthz?strict=1")

    assert response.status_code == 200
    assert response.json()["broker"] == "ok"


def test_a_broker_outage_keeps_the_web_in_rotation_but_fails_the_strict_check(
    real_broker, settings
):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:9/0"  # nothing listens there

    lenient = Client().get("/healthz")
    strict = Client().get("/healthz?strict=1")

    assert lenient.status_code == 200
    assert lenient.json()["broker"].startswith("down")
    assert strict.status_code == 503
