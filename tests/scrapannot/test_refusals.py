"""A refusal answers a page with the navigation and logs one line, not a traceback."""

import logging

from django.urls import reverse

from scrapannot.log_filters import InProcessBrokerHostname
from tests.conftest import client_for


def test_a_refused_page_keeps_the_navigation_and_says_what_to_do(annotator):
    response = client_for(annotator).get(reverse("audit-trail"))

    body = response.content.decode()
    assert response.status_code == 403
    assert 'class="topbar"' in body and "Log out" in body
    assert "This page is not for your role" in body and "(<strong>ann</strong>)" in body
    assert f'href="{reverse("home")}"' in body


def test_a_refusal_is_logged_as_one_line_without_a_traceback(annotator, caplog):
    with caplog.at_level(logging.WARNING, logger="django.request"):
        client_for(annotator).get(reverse("audit-trail"))

    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.status_code == 403 and record.exc_info is None
    assert "Traceback" not in caplog.text


def test_the_in_process_brokers_missing_hostname_is_not_logged(settings):
    settings.CELERY_BROKER_URL = "memory://"
    record = logging.LogRecord(
        "kombu.connection", logging.WARNING, __file__, 1,
        "No hostname was supplied. Reverting to default 'localhost'", None, None,
    )  # fmt: skip
    assert not InProcessBrokerHostname().filter(record)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/0"
    assert InProcessBrokerHostname().filter(record)
