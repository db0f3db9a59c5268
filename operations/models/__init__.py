"""The operator application's models, one module per concern: live estimates, decisions and
escalations (`live`), webhook endpoints and deliveries (`webhooks`), cached Grad-CAM heatmaps
(`explanations`). Importing the package registers them all with the app."""

from operations.models.explanations import Explanation
from operations.models.live import Escalation, LiveEstimate, OperatorDecision
from operations.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

__all__ = [
    "Escalation", "Explanation", "LiveEstimate", "OperatorDecision", "WebhookAttempt",
    "WebhookDelivery", "WebhookEndpoint", "WebhookEvent",
]  # fmt: skip
