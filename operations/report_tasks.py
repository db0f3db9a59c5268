"""The reports helper's Celery tasks: webhook deliveries and Grad-CAM explanations. Thin and
idempotent: each takes ids and calls one domain function that finds its work done on a re-run.

Routed by settings.CELERY_TASK_ROUTES: "webhooks" (network waits) and "explanations" (a backbone
run with gradients), so neither holds up live scoring. Discovered through
`app.autodiscover_tasks(related_name="report_tasks")` in scrapannot/celery.py.
"""

from celery import shared_task

from labeling.models import Railcar
from mlloop.models import ModelVersion
from operations import explanations, webhooks

# A POST waits at most WEBHOOK_TIMEOUT_S; a Grad-CAM of one keyframe takes seconds on a CPU.
WEBHOOK_TIME_LIMIT_S = 120
EXPLANATION_TIME_LIMIT_S = 300


@shared_task(
    name="operations.deliver_webhook",
    acks_late=True,
    soft_time_limit=WEBHOOK_TIME_LIMIT_S - 20,
    time_limit=WEBHOOK_TIME_LIMIT_S,
)
def deliver_webhook(delivery_id: int, attempt: int) -> float | None:
    retry_in = webhooks.attempt_delivery(delivery_id=delivery_id, attempt=attempt)
    if retry_in is not None:
        # The attempt number travels with the message: a duplicate of this message finds the
        # attempt made and does nothing (webhooks.attempt_delivery).
        deliver_webhook.apply_async((delivery_id, attempt + 1), countdown=retry_in)
    return retry_in


@shared_task(
    name="operations.resend_stalled_webhooks",
    soft_time_limit=WEBHOOK_TIME_LIMIT_S - 20,
    time_limit=WEBHOOK_TIME_LIMIT_S,
)
def resend_stalled_webhooks() -> int:
    return webhooks.resend_stalled()


@shared_task(
    name="operations.compute_explanation",
    acks_late=True,
    soft_time_limit=EXPLANATION_TIME_LIMIT_S - 30,
    time_limit=EXPLANATION_TIME_LIMIT_S,
)
def compute_explanation(railcar_id: int, layer_index: int, model_version_id: int) -> int | None:
    railcar = Railcar.objects.filter(pk=railcar_id).first()
    model_version = ModelVersion.objects.filter(pk=model_version_id).first()
    if railcar is None or model_version is None:
        return None  # deleted since it was queued
    try:
        found = explanations.compute(
            railcar=railcar, layer_index=layer_index, model_version=model_version
        )
    except explanations.NotExplainable:
        return None
    return found.pk
