from django.contrib import admin
from django.http import HttpRequest

from mlloop.models import (
    DatasetItem,
    DatasetVersion,
    FrameFeature,
    ModelVersion,
    RailcarScore,
    SplitAssignment,
)

# -- Dataset versions (mlloop.datasets) -------------------------------------------------------


class FrozenAdmin(admin.ModelAdmin):
    """Dataset versions, their items and the split draws are written by freeze_version only and
    never edited (the database refuses updates too): view-only here."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(DatasetVersion)
class DatasetVersionAdmin(FrozenAdmin):
    list_display = ["number", "name", "created_at", "created_by", "railcar_count", "content_hash"]
    search_fields = ["name", "content_hash"]


@admin.register(DatasetItem)
class DatasetItemAdmin(FrozenAdmin):
    list_display = ["version", "railcar", "split", "contamination_pct", "grade", "std_pct"]
    list_filter = ["version", "split", "grade"]
    list_select_related = ["version", "railcar"]
    search_fields = ["railcar__uid", "railcar__real_id"]


@admin.register(SplitAssignment)
class SplitAssignmentAdmin(FrozenAdmin):
    list_display = ["railcar", "split", "assigned_at"]
    list_filter = ["split"]
    list_select_related = ["railcar"]
    search_fields = ["railcar__uid", "railcar__real_id"]


# -- Model versions, cached features, scores (mlloop.registry, features, scoring) -------------


class LearningLoopReadOnlyAdmin(admin.ModelAdmin):
    """Written by training and scoring only; promotion and rollback go through the model page
    (mlloop.registry, audited), never through an edit here."""

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(LearningLoopReadOnlyAdmin):
    list_display = ["number", "dataset_version", "status", "is_production", "stage", "created_at"]
    list_filter = ["status", "is_production"]
    list_select_related = ["dataset_version"]


@admin.register(FrameFeature)
class FrameFeatureAdmin(LearningLoopReadOnlyAdmin):
    list_display = ["frame", "feature_key", "dim", "created_at"]
    list_filter = ["feature_key"]
    exclude = ["vector"]


@admin.register(RailcarScore)
class RailcarScoreAdmin(LearningLoopReadOnlyAdmin):
    list_display = ["railcar", "model_version", "contamination_pct", "uncertainty"]
    list_filter = ["model_version"]
    list_select_related = ["railcar", "model_version"]
