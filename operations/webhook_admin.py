"""Webhook endpoints in the Django admin: admins add, change and deactivate them (audited; the
secret is never written to the audit trail). Deliveries are read here and replayed on the
`operations:webhooks` page."""

from typing import Any

from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from operations.models import WebhookEndpoint
from scrapannot import audit


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "active", "lines", "event_types", "created_at")
    list_filter = ("active",)

    def save_model(
        self, request: HttpRequest, obj: WebhookEndpoint, form: Any, change: bool
    ) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record(
                action="webhook.endpoint_changed" if change else "webhook.endpoint_added",
                actor=request.user,
                obj=obj,
                payload={
                    "name": obj.name, "url": obj.url, "active": obj.active, "lines": obj.lines,
                    "event_types": obj.event_types,
                    "secret_changed": "secret" in form.changed_data,
                },
            )  # fmt: skip

    def delete_model(self, request: HttpRequest, obj: WebhookEndpoint) -> None:
        with transaction.atomic():
            audit.record(
                action="webhook.endpoint_deleted",
                actor=request.user,
                obj=obj,
                payload={"name": obj.name, "url": obj.url},
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """The "delete selected" action, audited like the one-by-one delete."""
        with transaction.atomic():
            for obj in queryset:
                audit.record(
                    action="webhook.endpoint_deleted",
                    actor=request.user,
                    obj=obj,
                    payload={"name": obj.name, "url": obj.url, "bulk": True},
                )
            super().delete_queryset(request, queryset)
