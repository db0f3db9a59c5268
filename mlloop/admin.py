from django.contrib import admin

from mlloop.models import (
    DatasetItem,
    DatasetVersion,
    FrameFeature,
    ModelVersion,
    RailcarScore,
    SplitAssignment,
)
from scrapannot.admin_rules import ReadOnlyAdmin

# -- Dataset versions (mlloop.datasets) -------------------------------------------------------


class FrozenAdmin(ReadOnlyAdmin):
    """Dataset versions, their items and the split draws are written by freeze_version only and
    never edited (the database refuses updates too): view-only here."""


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


class LearningLoopReadOnlyAdmin(ReadOnlyAdmin):
    """Written by training and scoring only; promotion and rollback go through the model page
    (mlloop.registry, audited), never through an edit here."""


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
