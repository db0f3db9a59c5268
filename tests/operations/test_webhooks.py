"""Signed webhooks against a real HTTP receiver: the signature, retries with backoff, the
delivery log, permanent failures, replay, and a redelivered task that does not send twice."""

import datetime as dt
import hashlib
import hmac
import json
import socket

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from operations import webhooks
from operations.models import WebhookDelivery, WebhookEndpoint
from operations.report_tasks import deliver_webhook, resend_stalled_webhooks
from operations.reports import unloading_report
from scrapannot.models import AuditEvent
from tests.conftest import client_for
from tests.operations.report_factories import estimate, operator_of, unloading
from tests.operations.webhook_receiver import receiver

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]
SECRET = "s3cret-of-the-mes"
Status = WebhookDelivery.Status


@pytest.fixture(autouse=True)
def fast_backoff(settings):
    settings.OPERATIONS_REPORTS = {**settings.OPERATIONS_REPORTS, "WEBHOOK_BACKOFF_S": 0.5,
                                   "WEBHOOK_MAX_ATTEMPTS": 4, "WEBHOOK_TIMEOUT_S": 5.0,
                                   "WEBHOOK_ALLOW_PRIVATE": True}  # fmt: skip


def endpoint(url: str, **fields: object) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(name="MES", url=url, secret=SECRET, **fields)


def changed(railcar, django_capture_on_commit_callbacks, event: str = "estimate"):
    # The deliveries are sent once the change commits (the eager task runs in the callback).
    with django_capture_on_commit_callbacks(execute=True):
        return webhooks.report_changed(railcar=railcar, event=event)


def signature_ok(headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Scrapannot-Signature"], expected)


def test_a_receiver_that_fails_first_gets_the_signed_report_on_the_retry(
    django_capture_on_commit_callbacks,
):
    railcar = unloading(line="L1")
    estimate(railcar, pct=4.25)
    with receiver(500, 200) as hook:
        endpoint(hook.url)
        (delivery,) = changed(railcar, django_capture_on_commit_callbacks)

    assert len(hook.received) == 2
    for got in hook.received:
        assert signature_ok(got.headers, got.body)
        assert got.headers["X-Scrapannot-Delivery"] == str(delivery.uid)
        assert got.headers["X-Scrapannot-Event"] == "estimate"
        assert got.headers["X-Scrapannot-Timestamp"].isdigit()
        assert got.headers["Content-Type"] == "application/json"
    body = json.loads(hook.received[1].body)
    assert body["delivery"] == str(delivery.uid) and body["event"] == "estimate"
    assert body["report"] == json.loads(json.dumps(unloading_report(railcar)))
    delivery.refresh_from_db()
    assert delivery.status == Status.SUCCEEDED and delivery.attempts == 2
    first, second = delivery.attempt_log.all()
    assert (first.response_code, first.succeeded, first.retry_in_s) == (500, False, 0.5)
    assert "HTTP 500" in first.error and first.duration_ms >= 0
    assert (second.response_code, second.succeeded, second.retry_in_s) == (200, True, None)
    assert AuditEvent.objects.filter(action="webhook.succeeded").count() == 1


def test_retries_back_off_exponentially_and_stop_at_the_bound(django_capture_on_commit_callbacks):
    railcar = unloading(line="L1")
    with receiver(503) as hook:
        endpoint(hook.url)
        (delivery,) = changed(railcar, django_capture_on_commit_callbacks)

    assert len(hook.received) == 4
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and delivery.attempts == 4
    assert [a.retry_in_s for a in delivery.attempt_log.all()] == [0.5, 1.0, 2.0, None]
    assert AuditEvent.objects.filter(action="webhook.failed").count() == 1


@pytest.mark.parametrize(("code", "attempts"), [(400, 1), (401, 1), (404, 1), (410, 1),
                                                (408, 2), (429, 2)])  # fmt: skip
def test_client_errors_are_permanent_except_408_and_429(
    code, attempts, django_capture_on_commit_callbacks
):
    railcar = unloading(line="L1")
    with receiver(code, 204) as hook:
        endpoint(hook.url)
        (delivery,) = changed(railcar, django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.attempts == attempts == len(hook.received)
    assert delivery.status == (Status.FAILED if attempts == 1 else Status.SUCCEEDED)


def test_a_redirect_is_not_followed(django_capture_on_commit_callbacks):
    with receiver(302) as hook:
        endpoint(hook.url)
        (delivery,) = changed(unloading(line="L1"), django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and len(hook.received) == 1


def test_a_receiver_that_is_down_is_retried_with_the_error_logged(
    django_capture_on_commit_callbacks,
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint(f"http://127.0.0.1:{port}/gone")
    (delivery,) = changed(unloading(line="L1"), django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and delivery.attempts == 4
    first = delivery.attempt_log.first()
    assert first.response_code is None and "refused" in first.error.lower()


def test_a_redelivered_task_does_not_send_a_succeeded_delivery_again(
    django_capture_on_commit_callbacks,
):
    with receiver(200) as hook:
        endpoint(hook.url)
        (delivery,) = changed(unloading(line="L1"), django_capture_on_commit_callbacks)
        deliver_webhook.apply(args=(delivery.pk, 1))  # the broker hands the message out again
        deliver_webhook.apply(args=(delivery.pk, 2))  # and a stale retry turns up
    assert len(hook.received) == 1
    assert delivery.attempt_log.count() == 1


def test_endpoints_get_only_their_lines_and_event_types(django_capture_on_commit_callbacks):
    with receiver(200) as l1_decisions, receiver(200) as everything:
        endpoint(l1_decisions.url, lines=["L1"], event_types=["decision"])
        endpoint(everything.url)
        endpoint(everything.url, active=False)
        changed(unloading(line="L1"), django_capture_on_commit_callbacks, "estimate")
        changed(unloading(line="L2"), django_capture_on_commit_callbacks, "decision")
        changed(unloading(line="L1"), django_capture_on_commit_callbacks, "decision")
    assert [json.loads(r.body)["event"] for r in l1_decisions.received] == ["decision"]
    assert len(everything.received) == 3


def test_nothing_is_sent_when_the_change_rolls_back():
    with receiver(200) as hook:
        endpoint(hook.url)
        railcar = unloading(line="L1")
        # No commit (the test's transaction never commits): the on-commit send never runs.
        webhooks.report_changed(railcar=railcar, event="escalation")
    assert hook.received == []
    assert WebhookDelivery.objects.get().status == Status.PENDING


def test_an_admin_sees_the_log_and_replays_a_delivery(
    admin_user, django_capture_on_commit_callbacks
):
    railcar = unloading(line="L1")
    with receiver(404, 200) as hook:
        endpoint(hook.url)
        (failed,) = changed(railcar, django_capture_on_commit_callbacks)
        client = client_for(admin_user)
        page = client.get(reverse("operations:webhooks"))
        assert page.status_code == 200
        assert str(failed.uid).encode() in page.content and b"HTTP 404" in page.content
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("operations:webhooks"), {"delivery": failed.pk})
        assert response.status_code == 302

    replay = WebhookDelivery.objects.get(replay_of=failed)
    assert replay.status == Status.SUCCEEDED and replay.uid != failed.uid
    assert replay.replayed_by == admin_user
    got = hook.received[-1]
    assert got.headers["X-Scrapannot-Delivery"] == str(replay.uid) and signature_ok(
        got.headers, got.body
    )
    assert json.loads(got.body)["report"] == json.loads(failed.body)["report"]
    event = AuditEvent.objects.get(action="webhook.replayed")
    assert event.actor == admin_user and event.payload["replay_of"] == str(failed.uid)


@pytest.mark.parametrize("who", ["annotator", "senior", "outsider"])
def test_only_admins_reach_the_delivery_log(who, request):
    client = client_for(request.getfixturevalue(who))
    assert client.get(reverse("operations:webhooks")).status_code == 403
    assert client.post(reverse("operations:webhooks"), {"delivery": 1}).status_code == 403
    operator = client_for(operator_of("olga", "L1"))
    assert operator.get(reverse("operations:webhooks")).status_code == 403


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://[fe80::1]/hook",  # IPv6 link-local
        "http://[::ffff:169.254.169.254]/hook",  # metadata behind an IPv4-mapped address
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "file:///etc/passwd",
        "ftp://mes.plant/hook",
    ],
)
def test_link_local_metadata_and_odd_destinations_are_refused(url):
    with pytest.raises(webhooks.UnsafeDestination):
        webhooks.check_destination(url)
    with pytest.raises(ValidationError):
        WebhookEndpoint(name="x", url=url, secret="s").full_clean()


def test_private_addresses_are_allowed_only_when_the_setting_says_so(settings):
    for url in ("http://10.1.2.3/hook", "http://192.168.0.9/hook", "http://127.0.0.1:9/hook"):
        webhooks.check_destination(url)
    settings.OPERATIONS_REPORTS = {**settings.OPERATIONS_REPORTS, "WEBHOOK_ALLOW_PRIVATE": False}
    for url in ("http://10.1.2.3/hook", "http://192.168.0.9/hook", "http://127.0.0.1:9/hook"):
        with pytest.raises(webhooks.UnsafeDestination):
            webhooks.check_destination(url)


def test_a_delivery_to_a_destination_refused_since_is_a_permanent_failure(
    settings, django_capture_on_commit_callbacks
):
    with receiver(200) as hook:
        endpoint(hook.url)
        settings.OPERATIONS_REPORTS = {**settings.OPERATIONS_REPORTS,
                                       "WEBHOOK_ALLOW_PRIVATE": False}  # fmt: skip
        (delivery,) = changed(unloading(line="L1"), django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert delivery.status == Status.FAILED and hook.received == []
    assert delivery.attempt_log.get().error.startswith("refused")


def test_an_unknown_event_is_a_programming_error():
    with pytest.raises(ValueError):
        webhooks.report_changed(railcar=unloading(), event="made-up")


def test_a_delivery_whose_message_was_lost_is_sent_by_the_reconciler(
    django_capture_on_commit_callbacks,
):
    with receiver(200) as hook:
        endpoint(hook.url)
        # No on-commit send: as if the broker had refused the enqueue.
        (lost,) = webhooks.report_changed(railcar=unloading(line="L1"), event="estimate")
        (fresh,) = webhooks.report_changed(railcar=unloading(line="L1"), event="estimate")
        late = timezone.now() - dt.timedelta(seconds=webhooks.STALLED_AFTER_S + 1)
        WebhookDelivery.objects.filter(pk=lost.pk).update(created_at=late)

        assert resend_stalled_webhooks.apply().get() == 1

    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.status == Status.SUCCEEDED and fresh.status == Status.PENDING
    assert [r.headers["X-Scrapannot-Delivery"] for r in hook.received] == [str(lost.uid)]
