from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)
from rest_framework.authtoken.models import TokenProxy

from scrapannot import audit
from scrapannot.admin_rules import AuditedAdmin, ReadOnlyAdmin
from scrapannot.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Read-only: the trail is append-only, for people as for the database."""

    list_display = ["seq", "created_at", "actor_label", "action", "object_type", "object_id"]
    list_filter = ["action", "object_type"]
    search_fields = ["object_id", "actor_label", "action"]
    ordering = ["-id"]


# -- Third-party registrations, re-registered audited -------------------------------------------
# Users and groups carry the roles; tokens let plant systems post; schedules decide when scoring
# and calibration run. The admin is their editor, so each edit and delete is audited here.


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        # The password form saves without save_model: audit the change (never the password).
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = User.objects.get(pk=id)
                audit.record(
                    action="admin.auth.user.password_changed",
                    actor=request.user,
                    obj=user,
                    payload={"object": str(user)},
                )
        return response


admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
for _model in [Group, TokenProxy, PeriodicTask, ClockedSchedule, CrontabSchedule, SolarSchedule,
               IntervalSchedule]:  # fmt: skip
    _base = type(admin.site._registry[_model])
    admin.site.unregister(_model)
    admin.site.register(_model, type(f"Audited{_base.__name__}", (AuditedAdmin, _base), {}))
