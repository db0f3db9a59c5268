"""The two shapes a Django-admin registration may take, so that no edit bypasses the audit trail.

- `ReadOnlyAdmin`: admins look and filter; every change goes through the domain function that
  keeps the invariants and audits it (ingest, aggregation, decisions, freeze, registry...).
- `AuditedAdmin`: configuration the admin is the editor of (users, groups, tokens, schedules,
  line names, webhook endpoints): every add, change and delete - the bulk delete action included -
  writes an audit event in the same transaction as the change.

tests/scrapannot/test_admin_rules.py walks `admin.site._registry` and holds every registration
to one of the two, so a model registered later without either fails the suite.
"""

from typing import Any

from django.contrib import admin
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from scrapannot import audit

# Fields whose names hold one of these are never copied into the trail (password1/password2 of
# the add-user form included): the trail is readable by every admin and kept forever.
SECRET_PARTS = ("password", "secret", "key", "token")


def is_secret(name: str) -> bool:
    return any(part in name.lower() for part in SECRET_PARTS)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


def _shown(value: Any) -> Any:
    if isinstance(value, QuerySet | list | tuple | set):
        return sorted(str(v) for v in value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def changed_fields(form: Any) -> dict[str, Any]:
    """What the form changed, by field; secrets are named but their value never written."""
    return {
        name: "(changed)" if is_secret(name) else _shown(form.cleaned_data.get(name))
        for name in form.changed_data
    }


class AuditedAdmin(admin.ModelAdmin):
    """Mix in before the registration's own ModelAdmin (e.g. `(AuditedAdmin, UserAdmin)`)."""

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        # Bulk actions other than delete (e.g. django_celery_beat's enable/disable) update the
        # rows without save_model, so unaudited: only the audited "delete selected" stays.
        return {
            name: action
            for name, action in super().get_actions(request).items()
            if name == "delete_selected"
        }

    def _action(self, obj: models.Model, verb: str) -> str:
        return f"admin.{obj._meta.label_lower}.{verb}"

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        # changeform_view already runs in a transaction; this one keeps the rule local.
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record(
                action=self._action(obj, "changed" if change else "added"),
                actor=request.user,
                obj=obj,
                payload={"object": str(obj), "fields": changed_fields(form)},
            )

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        with transaction.atomic():
            audit.record(
                action=self._action(obj, "deleted"),
                actor=request.user,
                obj=obj,
                payload={"object": str(obj)},
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        """The "delete selected" action: one event per object, all in one transaction."""
        with transaction.atomic():
            for obj in queryset:
                audit.record(
                    action=self._action(obj, "deleted"),
                    actor=request.user,
                    obj=obj,
                    payload={"object": str(obj), "bulk": True},
                )
            super().delete_queryset(request, queryset)
