"""Webhook deliveries on a real Celery worker through the real Redis: the retry waits out its
backoff on the broker, and a redelivered message does not send a succeeded delivery again."""

import json

from django.db import transaction

from operations import webhooks
from operations.models import WebhookDelivery, WebhookEndpoint
from operations.report_tasks import deliver_webhook
from tests.celery_worker import wait_for
from tests.operations.report_factories import unloading
from tests.operations.webhook_receiver import receiver

Status = WebhookDelivery.Status


def test_a_worker_retries_after_the_backoff_and_never_sends_a_delivery_twice(
    on_postgresql, celery_worker
):
    celery_worker.env["WEBHOOK_BACKOFF_S"] = "1.5"
    celery_worker.start(queues="webhooks")
    first, second = unloading(line="L1"), unloading(line="L1")
    with receiver(500, 200) as hook:
        WebhookEndpoint.objects.create(name="MES", url=hook.url, secret="k")
        with transaction.atomic():
            (delivery,) = webhooks.report_changed(railcar=first, event="estimate")

        wait_for(
            lambda: WebhookDelivery.objects.filter(
                pk=delivery.pk, status=Status.SUCCEEDED
            ).exists(),
            what="the retried delivery to succeed",
        )
        failed, succeeded = delivery.attempt_log.all()
        assert (succeeded.started_at - failed.started_at).total_seconds() >= 1.5
        assert len(hook.received) == 2

        # The broker hands both messages out again; then one more report, as a marker: the solo
        # worker takes messages in order, so once the marker is sent, the duplicates were seen.
        deliver_webhook.delay(delivery.pk, 1)
        deliver_webhook.delay(delivery.pk, 2)
        with transaction.atomic():
            (marker,) = webhooks.report_changed(railcar=second, event="decision")
        wait_for(
            lambda: WebhookDelivery.objects.filter(pk=marker.pk, status=Status.SUCCEEDED).exists(),
            what="the marker delivery",
        )

    delivered = [json.loads(r.body)["delivery"] for r in hook.received]
    assert delivered == [str(delivery.uid), str(delivery.uid), str(marker.uid)]
    assert delivery.attempt_log.count() == 2
