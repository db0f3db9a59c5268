from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from guardian.admin import GuardedModelAdmin
from guardian.forms import UserObjectPermissionsForm

from labeling import lines
from labeling.models import Assignment, Frame, FrameCheck, Layer, Line, Railcar, Rating
from scrapannot.admin_rules import AuditedAdmin, ReadOnlyAdmin


class IngestOnly(ReadOnlyAdmin):
    """Railcars, frames and assignments arrive through ingest and the pool, and leave only through
    them (audited): view-only here. A delete here would drop ratings, masks and checks unaudited."""


class LayerInline(admin.TabularInline):
    model = Layer
    fields = ["index", "keyframe", "peak_iou"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Railcar)
class RailcarAdmin(IngestOnly):
    list_display = [
        "real_id", "line", "camera", "unloading_started_at", "status", "attention_reason"
    ]  # fmt: skip
    list_filter = ["status", "line", "camera"]
    search_fields = ["real_id", "uid"]
    date_hierarchy = "unloading_started_at"
    readonly_fields = [
        "uid", "real_id", "line", "camera", "fingerprint", "unloading_started_at",
        "unloading_ended_at", "layer_source", "status", "attention_reason", "checked_at",
        "created_at",
    ]  # fmt: skip
    inlines = [LayerInline]


class FrameCheckInline(admin.TabularInline):
    model = FrameCheck
    fields = ["name", "value", "threshold", "passed", "detail", "measured_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Frame)
class FrameAdmin(IngestOnly):
    list_display = ["railcar", "index", "layer", "captured_at", "quality", "rejection"]
    list_filter = ["quality", "rejection", "camera"]
    inlines = [FrameCheckInline]
    search_fields = ["railcar__real_id", "content_sha256", "declared_sha256", "uid"]
    list_select_related = ["railcar", "layer__railcar"]
    readonly_fields = [f.name for f in Frame._meta.fields]


class RatingInline(admin.StackedInline):
    model = Rating
    fields = ["contamination_pct", "grade", "seconds_spent", "submitted_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Assignment)
class AssignmentAdmin(IngestOnly):
    """For admins: who holds what. Annotators never reach the Django admin."""

    list_display = ["pseudonym", "railcar", "annotator", "slot", "status", "lease_expires_at"]
    list_filter = ["status"]
    search_fields = ["pseudonym", "railcar__real_id", "annotator__username", "uid"]
    list_select_related = ["railcar", "annotator"]
    readonly_fields = [f.name for f in Assignment._meta.fields]
    inlines = [RatingInline]


@admin.register(Line)
class LineAdmin(AuditedAdmin, GuardedModelAdmin):
    """Lines, and on each line's "Object permissions" page the users granted it: operators and
    senior inspectors `operate_line`, plant-system accounts `post_unloadings`. Granting goes
    through labeling.lines (audited), as `manage.py grant_line` does. Adding and renaming are
    audited; deleting is refused (railcars and grants hang on a line)."""

    list_display = ["name", "description", "created_at"]
    search_fields = ["name"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def obj_perms_manage_group_view(
        self, request: HttpRequest, object_pk: str, group_id: str
    ) -> HttpResponse:
        # Lines are granted to users only, through labeling.lines (audited): a group grant here
        # would reach line_names unaudited.
        raise PermissionDenied("lines are granted to users, one by one")

    def get_obj_perms_manage_user_form(self, request: HttpRequest) -> type[forms.Form]:
        actor = request.user

        class LineUserPermissionsForm(UserObjectPermissionsForm):
            def get_obj_perms_field_choices(self) -> list:
                # Only the two line permissions: add/change/delete of a line are Django's own.
                return [
                    c for c in super().get_obj_perms_field_choices() if c[0] in lines.PERMISSIONS
                ]

            def save_obj_perms(self) -> None:
                chosen = set(self.cleaned_data[self.get_obj_perms_field_name()])
                held = set(self.get_obj_perms_field_initial()) & set(lines.PERMISSIONS)
                for permission in sorted(held - chosen):
                    lines.revoke(actor=actor, user=self.user, line=self.obj, permission=permission)
                for permission in sorted(chosen - held):
                    lines.grant(actor=actor, user=self.user, line=self.obj, permission=permission)

        return LineUserPermissionsForm
