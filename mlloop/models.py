"""The learning loop's records: dataset versions, model versions, cached features, scores.

A railcar's split (`SplitAssignment`) is drawn once, the first time any version takes it, and
never changes, so no railcar crosses between train, val and test within or across versions.
A `DatasetVersion` is immutable once frozen: its items point at the exact `FinalLabel` rows they
froze (superseded labels are kept), and its `content_hash` covers every item.
"""

from django.conf import settings as django_settings
from django.db import models
from django.db.models import Q


class Split(models.TextChoices):
    TRAIN = "train", "train"
    VAL = "val", "validation"
    TEST = "test", "test"


class SplitAssignment(models.Model):
    railcar = models.OneToOneField(
        "labeling.Railcar", on_delete=models.PROTECT, related_name="split_assignment"
    )
    split = models.CharField(max_length=8, choices=Split.choices)
    assigned_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.split


class DatasetVersion(models.Model):
    number = models.PositiveIntegerField(unique=True)
    name = models.CharField(max_length=120, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    # SHA-256 over the canonical item list (railcar uid, label, split): equal content, equal hash.
    content_hash = models.CharField(max_length=64, db_index=True)
    railcar_count = models.PositiveIntegerField()
    # {"split": {"train": n, ...}, "grade": {...}, "contamination": {"edges": [...], "counts"...}}
    histograms = models.JSONField(default=dict)

    class Meta:
        ordering = ["-number"]

    def __str__(self) -> str:
        return f"dataset v{self.number}"


class DatasetItem(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="items")
    railcar = models.ForeignKey("labeling.Railcar", on_delete=models.PROTECT, related_name="+")
    # Null for an item of another label source (mlloop.datasets.LabelSource: an operator's
    # amendment), whose origin is in `provenance`.
    final_label = models.ForeignKey(
        "adjudication.FinalLabel", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Where the label came from: a final label's source (consensus, adjudication) or the key of
    # the label source the freeze included ("operator"). Blank on items frozen before it existed.
    source = models.CharField(max_length=16, blank=True)
    provenance = models.JSONField(default=dict, blank=True)
    split = models.CharField(max_length=8, choices=Split.choices)
    # Copied from the label when frozen, so a version reads without joins and never drifts.
    contamination_pct = models.DecimalField(max_digits=4, decimal_places=1)
    grade = models.CharField(max_length=16)
    std_pct = models.FloatField()

    class Meta:
        ordering = ["version_id", "railcar_id"]
        constraints = [
            models.UniqueConstraint(fields=["version", "railcar"], name="dataset_item_once")
        ]
        indexes = [models.Index(fields=["version", "split"])]

    def __str__(self) -> str:
        return f"{self.railcar_id} in v{self.version_id} ({self.split})"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "queued"
        RUNNING = "running", "running"
        SUCCEEDED = "succeeded", "succeeded"
        FAILED = "failed", "failed"

    number = models.PositiveIntegerField(unique=True)
    dataset_version = models.ForeignKey(
        DatasetVersion, on_delete=models.PROTECT, related_name="model_versions"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    # Backbone, image size, bag size, lambda, epochs, seed, ... as the run used them.
    settings = models.JSONField(default=dict)
    # {"val": {...}, "test": {"mae": .., "r2": .., "accuracy": .., "f1_macro": .., ...}}
    metrics = models.JSONField(default=dict)
    artifact = models.FileField(max_length=200, blank=True)
    artifact_sha256 = models.CharField(max_length=64, blank=True)
    log = models.TextField(blank=True)
    progress = models.FloatField(default=0.0, help_text="0-1 while running")
    stage = models.CharField(max_length=120, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    # When mlloop.reconcile last sent the training task again (its message seemed lost).
    nudged_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    created_by = models.ForeignKey(
        django_settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    # The last sign of life of the worker running it (mlloop.runs beats every HEARTBEAT_S).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    is_production = models.BooleanField(default=False)
    promoted_at = models.DateTimeField(null=True, blank=True)
    # The production model this one replaced when promoted: where a rollback returns to.
    promoted_over = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_production"],
                condition=Q(is_production=True),
                name="model_version_one_production",
            )
        ]

    def __str__(self) -> str:
        return f"model v{self.number} ({self.status})"


class FrameFeature(models.Model):
    """A backbone's pooled feature vector for one frame, cached per feature key (backbone, image
    size, weights digest), so scoring and head-only retraining do not run the backbone again."""

    frame = models.ForeignKey("labeling.Frame", on_delete=models.CASCADE, related_name="+")
    feature_key = models.CharField(max_length=64)
    dim = models.PositiveIntegerField()
    vector = models.BinaryField(help_text="float32, little-endian")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["frame", "feature_key"], name="frame_feature_once")
        ]

    def __str__(self) -> str:
        return f"{self.feature_key} of frame {self.frame_id}"


class FrameFeatureMap(models.Model):
    """A keyframe's dense map (mlloop.inclusion.dense_map: by default stages 0-2 of the backbone
    on the stride-8 grid), cached per map key: what the dense inclusion head reads. float16,
    [height, width, channels]."""

    frame = models.ForeignKey("labeling.Frame", on_delete=models.CASCADE, related_name="+")
    feature_key = models.CharField(max_length=64)
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    channels = models.PositiveIntegerField()
    data = models.BinaryField(help_text="float16, little-endian, [height, width, channels]")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["frame", "feature_key"], name="frame_feature_map_once")
        ]

    def __str__(self) -> str:
        return f"{self.feature_key} map of frame {self.frame_id}"


class RailcarScore(models.Model):
    """A model version's estimate for one railcar (never shown to annotators)."""

    railcar = models.ForeignKey("labeling.Railcar", on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="scores")
    contamination_pct = models.FloatField()
    grade_probs = models.JSONField(help_text="{grade: probability}")
    contamination_spread = models.FloatField(help_text="STD of the contamination over the ensemble")
    grade_entropy = models.FloatField()
    uncertainty = models.FloatField(
        help_text="expected error in adjudication thresholds plus the grade's error chance "
        "(mlloop.selection); with the diversity discount it sets the pool priority"
    )
    scored_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["railcar", "model_version"], name="railcar_score_once")
        ]
        indexes = [models.Index(fields=["railcar", "-scored_at"])]

    def __str__(self) -> str:
        return f"{self.contamination_pct:.1f} % (u={self.uncertainty:.3f})"
