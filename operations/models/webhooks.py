"""Webhooks: the endpoints downstream systems register (admins manage them in the Django admin),
one delivery per report change and endpoint, and every attempt to send it.

A delivery keeps the exact body it signs, so a retry or a replay sends the same bytes.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from operations.webhook_destinations import UnsafeDestination, check_destination


class WebhookEvent(models.TextChoices):
    ESTIMATE = "estimate", "an estimate was recorded"
    DECISION = "decision", "an operator decided"
    ESCALATION = "escalation", "the railcar was escalated"


class WebhookEndpoint(models.Model):
    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500, help_text="http(s) URL the reports are POSTed to")
    # The receiver checks X-Scrapannot-Signature with it: HMAC-SHA256 of the body.
    secret = models.CharField(max_length=200)
    active = models.BooleanField(default=True)
    # Line names; empty means every line.
    lines = models.JSONField(default=list, blank=True)
    # WebhookEvent values; empty means every event.
    event_types = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def wants(self, *, line: str, event: str) -> bool:
        return (not self.lines or line in self.lines) and (
            not self.event_types or event in self.event_types
        )

    def clean(self) -> None:
        """The admin form's validation: a reachable, allowed URL and known event types."""
        errors: dict[str, str] = {}
        try:
            check_destination(self.url)
        except UnsafeDestination as exc:
            errors["url"] = str(exc)
        unknown = set(self.event_types or []) - set(WebhookEvent.values)
        if unknown:
            errors["event_types"] = (
                f"unknown events {sorted(unknown)}; known: {WebhookEvent.values}"
            )
        if not isinstance(self.lines, list) or not all(isinstance(x, str) for x in self.lines):
            errors["lines"] = "a list of line names (empty: every line)"
        if errors:
            raise ValidationError(errors)


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "pending"
        SUCCEEDED = "succeeded", "delivered"
        FAILED = "failed", "failed for good"

    # Sent as X-Scrapannot-Delivery: the receiver's idempotency key.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    railcar = models.ForeignKey(
        "labeling.Railcar", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    event = models.CharField(max_length=16, choices=WebhookEvent.choices)
    body = models.TextField(help_text="the exact JSON bytes signed and sent")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    replay_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="replays"
    )
    replayed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event} of {self.railcar_id} to {self.endpoint_id} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="attempt_log"
    )
    number = models.PositiveSmallIntegerField()
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField()
    response_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    succeeded = models.BooleanField()
    # Seconds until the next attempt (exponential backoff); null when none follows.
    retry_in_s = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="webhook_attempt_once")
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of delivery {self.delivery_id}"
