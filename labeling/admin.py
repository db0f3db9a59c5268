from django.contrib import admin

from labeling.models import Frame, Layer, Railcar


class LayerInline(admin.TabularInline):
    model = Layer
    fields = ["index", "keyframe", "peak_iou"]
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Railcar)
class RailcarAdmin(admin.ModelAdmin):
    list_display = [
        "real_id", "line", "camera", "unloading_started_at", "status", "layer_source"
    ]  # fmt: skip
    list_filter = ["status", "line", "camera"]
    search_fields = ["real_id", "uid"]
    date_hierarchy = "unloading_started_at"
    readonly_fields = [
        "uid", "real_id", "line", "camera", "fingerprint", "unloading_started_at",
        "unloading_ended_at", "layer_source", "created_at",
    ]  # fmt: skip
    inlines = [LayerInline]


@admin.register(Frame)
class FrameAdmin(admin.ModelAdmin):
    list_display = ["railcar", "index", "layer", "captured_at", "iou", "rejection"]
    list_filter = ["rejection", "camera"]
    search_fields = ["railcar__real_id", "content_sha256", "declared_sha256", "uid"]
    list_select_related = ["railcar", "layer__railcar"]
    readonly_fields = [f.name for f in Frame._meta.fields]
