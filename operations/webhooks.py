"""Signed webhooks: the unloading report, POSTed to the downstream systems an admin registered,
whenever the report changes (an estimate recorded, an operator's decision, an escalation).

`report_changed` is the one entry point: the code that makes such a change calls it inside its
transaction; one delivery row per interested endpoint commits with the change, and a task on the
"webhooks" queue sends it once committed. Each attempt is logged. A receiver verifies

    X-Scrapannot-Signature: sha256=<hex HMAC-SHA256 of the raw body, keyed by the secret>

and deduplicates on X-Scrapannot-Delivery (the same id on every retry of one delivery; a replay
is a new delivery with a new id, because the admin wants it received again).

Retries: connection errors, timeouts, 408, 429 and 5xx are retried with exponential backoff
(BACKOFF_S, 2x, 4x ...) up to MAX_ATTEMPTS attempts in all; any other answer outside 2xx is
a permanent failure (redirects are not followed: one could point at an internal address).
"""

import datetime as dt
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from labeling.models import Railcar
from operations.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from operations.reports import unloading_report
from operations.webhook_destinations import UnsafeDestination, check_destination
from scrapannot import audit
from scrapannot.enqueue import enqueue

SIGNATURE_HEADER = "X-Scrapannot-Signature"
TIMESTAMP_HEADER = "X-Scrapannot-Timestamp"
DELIVERY_HEADER = "X-Scrapannot-Delivery"
EVENT_HEADER = "X-Scrapannot-Event"
RETRYABLE_CODES = {408, 429}
# A pending delivery whose next attempt is this late lost its message (the broker refused the
# enqueue, or was restarted without persistence): the reconciler sends it again. Well above the
# task's time limit (report_tasks.WEBHOOK_TIME_LIMIT_S), so a live attempt is never doubled.
STALLED_AFTER_S = 300
# operations.report_tasks.deliver_webhook, enqueued by name (the task module imports this one).
DELIVER_TASK = "operations.deliver_webhook"
Status = WebhookDelivery.Status


def _config(name: str) -> Any:
    return settings.OPERATIONS_REPORTS[name]


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _body(*, uid: str, event: str, report: dict[str, Any]) -> str:
    payload = {"delivery": uid, "event": event, "occurred_at": timezone.now().isoformat(),
               "report": report}  # fmt: skip
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


def _enqueue(delivery: WebhookDelivery) -> None:
    transaction.on_commit(lambda: enqueue(DELIVER_TASK, delivery.pk, 1))


def report_changed(*, railcar: Railcar, event: str) -> list[WebhookDelivery]:
    """A delivery of the railcar's report, as it stands now, to every active endpoint that wants
    the event for the railcar's line. Call it inside the transaction of the change, after it."""
    if event not in WebhookEvent.values:
        raise ValueError(f"unknown webhook event {event!r}")
    endpoints = [
        e
        for e in WebhookEndpoint.objects.filter(active=True)
        if e.wants(line=railcar.line, event=event)
    ]
    if not endpoints:
        return []
    report = unloading_report(railcar)
    deliveries = []
    for endpoint in endpoints:
        delivery = WebhookDelivery(endpoint=endpoint, railcar=railcar, event=event)
        delivery.body = _body(uid=str(delivery.uid), event=event, report=report)
        delivery.save()
        _enqueue(delivery)
        deliveries.append(delivery)
    return deliveries


def on_estimate_recorded(sender: object, *, railcar_id: int, **kwargs: Any) -> None:
    """Receiver of `operations.signals.estimate_recorded` (sent after the estimate committed):
    the railcar's report goes to the endpoints that want estimates."""
    railcar = Railcar.objects.filter(pk=railcar_id).first()
    if railcar is not None:
        with transaction.atomic():
            report_changed(railcar=railcar, event=WebhookEvent.ESTIMATE)


@dataclass(frozen=True)
class Answer:
    code: int | None
    error: str
    retryable: bool

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx comes back as an HTTPError: a permanent failure


_opener = urllib.request.build_opener(_NoRedirects)


def _post(delivery: WebhookDelivery) -> Answer:
    endpoint = delivery.endpoint
    try:
        # Checked at every attempt, not only when saved: DNS may have changed since.
        check_destination(endpoint.url)
    except UnsafeDestination as exc:
        return Answer(None, f"refused: {exc}", retryable=False)
    body = delivery.body.encode()
    # check_destination admitted http and https only.
    request = urllib.request.Request(  # noqa: S310
        endpoint.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "scrapannot-webhooks/1",
            SIGNATURE_HEADER: sign(body, endpoint.secret),
            TIMESTAMP_HEADER: str(int(time.time())),
            DELIVERY_HEADER: str(delivery.uid),
            EVENT_HEADER: delivery.event,
        },
    )
    try:
        with _opener.open(request, timeout=float(_config("WEBHOOK_TIMEOUT_S"))) as response:
            return Answer(response.status, "", retryable=False)
    except urllib.error.HTTPError as exc:
        code = exc.code
        retryable = code in RETRYABLE_CODES or code >= 500
        return Answer(code, f"HTTP {code} {exc.reason}"[:500], retryable=retryable)
    except (urllib.error.URLError, OSError) as exc:  # refused, reset, timed out, TLS
        return Answer(None, f"{type(exc).__name__}: {exc}"[:500], retryable=True)


def backoff_s(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): BACKOFF_S * 2**(n-1)."""
    return float(_config("WEBHOOK_BACKOFF_S")) * 2 ** (attempt - 1)


def attempt_delivery(*, delivery_id: int, attempt: int) -> float | None:
    """Send attempt number `attempt` of a delivery; the seconds to wait before the next attempt,
    or None when there is none (delivered, failed for good, or nothing to do). A redelivered task
    finds the attempt made (or the delivery finished) and does nothing: a delivery that succeeded
    is never sent again except by an admin's replay."""
    with transaction.atomic():
        # The row stays locked while the POST is in flight (bounded by the timeout): a duplicate
        # task skips it instead of sending a second time.
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id, status=Status.PENDING, attempts=attempt - 1)
            .first()
        )
        if delivery is None:
            return None
        started = timezone.now()
        clock = time.monotonic()
        answer = _post(delivery)
        duration_ms = round((time.monotonic() - clock) * 1000)
        delivery.attempts = attempt
        retry_in = None
        if answer.ok:
            delivery.status = Status.SUCCEEDED
        elif answer.retryable and attempt < int(_config("WEBHOOK_MAX_ATTEMPTS")):
            retry_in = backoff_s(attempt)
            delivery.next_attempt_at = started + dt.timedelta(seconds=retry_in)
        else:
            delivery.status = Status.FAILED
        if delivery.status != Status.PENDING:
            delivery.finished_at = timezone.now()
            delivery.next_attempt_at = None
        delivery.save(update_fields=["attempts", "status", "next_attempt_at", "finished_at"])
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=attempt,
            started_at=started,
            duration_ms=duration_ms,
            response_code=answer.code,
            error=answer.error,
            succeeded=answer.ok,
            retry_in_s=retry_in,
        )
        if delivery.status != Status.PENDING:
            audit.record(
                action=f"webhook.{delivery.status}",
                obj=delivery,
                payload={"endpoint": delivery.endpoint.name, "railcar": delivery.railcar_id,
                         "event": delivery.event, "attempts": attempt, "code": answer.code},
            )  # fmt: skip
    return retry_in


def resend_stalled(*, now: dt.datetime | None = None) -> int:
    """Enqueue the next attempt of every pending delivery whose message seems lost; how many.
    Safe against a message that was only late: the attempt number gates each send."""
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=STALLED_AFTER_S)
    stalled = WebhookDelivery.objects.filter(status=Status.PENDING).filter(
        Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff)
    )
    sent = 0
    for pk, attempts in stalled.values_list("pk", "attempts").iterator():
        sent += enqueue(DELIVER_TASK, pk, attempts + 1)
    return sent


def replay(*, delivery: WebhookDelivery, actor: AbstractBaseUser) -> WebhookDelivery:
    """Send a delivery's body again, as a new delivery (new id, its own attempts), audited."""
    with transaction.atomic():
        copy = WebhookDelivery(
            endpoint=delivery.endpoint,
            railcar_id=delivery.railcar_id,
            event=delivery.event,
            replay_of=delivery,
            replayed_by=actor,
        )
        # The same report, under the new delivery's id (the receiver's idempotency key).
        payload = json.loads(delivery.body)
        payload["delivery"] = str(copy.uid)
        copy.body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        copy.save()
        audit.record(
            action="webhook.replayed",
            actor=actor,
            obj=copy,
            payload={"replay_of": str(delivery.uid), "endpoint": delivery.endpoint.name},
        )
        _enqueue(copy)
    return copy
