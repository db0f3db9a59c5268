"""Railcars, their layers (magnet grabs) and frames.

`Railcar` is one unloading of one railcar. Its plant id (`real_id`), line and camera are for admins
only: annotators reach railcars, layers and frames through the opaque `uid`s and never see these.
"""

import random
import uuid

from django.db import models


def random_tiebreak() -> float:
    return random.random()  # noqa: S311 - an ordering tie-break, not a secret


class Line(models.Model):
    """An unloading line (a crane and its camera). Access is granted per line with
    django-guardian object permissions (see `labeling.lines`): a plant system posts only for its
    lines, an operator or senior inspector sees only theirs. `Railcar.line` holds the name."""

    name = models.CharField(max_length=32, unique=True)
    description = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        permissions = [
            ("post_unloadings", "May post unloadings for this line"),
            ("operate_line", "May review this line's unloadings and estimates"),
        ]

    def __str__(self) -> str:
        return self.name


class Railcar(models.Model):
    class Status(models.TextChoices):
        # Opened by a plant system that appends its layers while unloading (labeling.live_ingest);
        # nothing but those appends touches it until it is closed.
        RECEIVING = "receiving", "receiving layers"
        INGESTED = "ingested", "ingested"
        CHECKING = "checking", "checking"
        IN_POOL = "in_pool", "in pool"
        NEEDS_ATTENTION = "needs_attention", "needs attention"
        RATED = "rated", "rated by all its raters"
        # Set by adjudication: the ratings disagree and a senior inspector decides.
        IN_ADJUDICATION = "in_adjudication", "awaiting adjudication"
        # Set by adjudication: the railcar has a final label (consensus or adjudicated).
        LABELED = "labeled", "final label set"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    real_id = models.CharField("plant railcar id", max_length=64, db_index=True)
    line = models.CharField(max_length=32)
    camera = models.CharField(max_length=64)
    # SHA-256 of the canonical manifest: re-posting the same unloading finds this row.
    fingerprint = models.CharField(max_length=64, unique=True)
    unloading_started_at = models.DateTimeField()
    unloading_ended_at = models.DateTimeField()
    layer_source = models.CharField(
        max_length=16, choices=[("boxes", "IoU of boxes"), ("manifest", "named in manifest")]
    )
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.INGESTED)
    # Why a railcar needs attention (not enough eligible layers, ...), for the admin list.
    attention_reason = models.CharField(max_length=255, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # When labeling.reconcile last enqueued the task this railcar's status waits for.
    nudged_at = models.DateTimeField(null=True, blank=True)
    # When an open (live) unloading last received frames: one idle too long is closed
    # (labeling.reconcile.close_idle_unloadings).
    received_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Routing (labeling.pool). Higher priority is handed out first (the learning loop sets it);
    # `tiebreak` is a random draw so that equal railcars go out in random order.
    priority = models.FloatField(default=0.0)
    tiebreak = models.FloatField(default=random_tiebreak)
    raters_needed = models.PositiveSmallIntegerField(default=0)
    # raters_needed minus the assignments holding a slot (active or submitted). Kept on the row so
    # that the pool can lock one railcar and take a slot without counting under a lock.
    open_slots = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            # What makes an unloading the same: ingest inserts under it (insert-or-conflict).
            models.UniqueConstraint(
                fields=["real_id", "line", "unloading_started_at"],
                name="railcar_unloading_unique",
            )
        ]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(
                fields=["-priority", "created_at", "tiebreak"],
                condition=models.Q(status="in_pool", open_slots__gt=0),
                name="railcar_pool_order",
            ),
            # The pool's random picks take the lowest tiebreak (labeling.pool).
            models.Index(
                fields=["tiebreak"],
                condition=models.Q(status="in_pool", open_slots__gt=0),
                name="railcar_pool_random_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.real_id} ({self.unloading_started_at:%Y-%m-%d %H:%M})"


class Layer(models.Model):
    """One magnet grab: the frames of one layer of scrap, in time order."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    railcar = models.ForeignKey(Railcar, on_delete=models.CASCADE, related_name="layers")
    index = models.PositiveIntegerField(help_text="1-based, in unloading order")
    keyframe = models.ForeignKey(
        "Frame", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    peak_iou = models.FloatField(null=True, blank=True)

    class Meta:
        ordering = ["railcar_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["railcar", "index"], name="layer_index_unique")
        ]

    def __str__(self) -> str:
        return f"layer {self.index} of {self.railcar}"


class Frame(models.Model):
    class Rejection(models.TextChoices):
        MISSING = "missing", "file missing from the unloading"
        CHECKSUM = "checksum", "SHA-256 does not match"
        OVERSIZED = "oversized", "file larger than the limit"
        NOT_IMAGE = "not_image", "not an image"
        TRUNCATED = "truncated", "truncated image"
        CORRUPT = "corrupt", "corrupt image data"
        DECOMPRESSION_BOMB = "decompression_bomb", "pixel count above the limit"

    class Quality(models.TextChoices):
        PENDING = "pending", "not checked yet"
        ELIGIBLE = "eligible", "eligible"
        INELIGIBLE = "ineligible", "ineligible"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    railcar = models.ForeignKey(Railcar, on_delete=models.CASCADE, related_name="frames")
    # Frames between grabs belong to no layer; they are kept all the same.
    layer = models.ForeignKey(
        Layer, null=True, blank=True, on_delete=models.SET_NULL, related_name="frames"
    )
    index = models.PositiveIntegerField(help_text="0-based position in the unloading")
    # The plant's file name may carry the railcar id or a date: admins only, never served.
    source_name = models.CharField(max_length=255)
    captured_at = models.DateTimeField()
    camera = models.CharField(max_length=64)
    declared_sha256 = models.CharField(max_length=64)
    # SHA-256 of the stored bytes (EXIF and other metadata stripped); also the file's name.
    content_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    file = models.FileField(max_length=200, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    image_format = models.CharField(max_length=8, blank=True)
    magnet_box = models.JSONField(null=True, blank=True)
    railcar_box = models.JSONField(null=True, blank=True)
    iou = models.FloatField(null=True, blank=True)
    rejection = models.CharField(max_length=24, choices=Rejection.choices, blank=True)
    rejection_detail = models.CharField(max_length=255, blank=True)
    # The verdict of the quality checks (labeling.quality); only eligible frames reach annotators.
    quality = models.CharField(max_length=12, choices=Quality.choices, default=Quality.PENDING)

    class Meta:
        ordering = ["railcar_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["railcar", "index"], name="frame_index_unique")
        ]
        indexes = [
            models.Index(fields=["railcar", "quality"]),
            # A camera's recent frames, newest first: its quality baseline (camera_baselines).
            models.Index(fields=["camera", "-captured_at"], name="frame_camera_recent"),
        ]

    def __str__(self) -> str:
        return f"frame {self.index} of {self.railcar}"

    @property
    def decodable(self) -> bool:
        return not self.rejection


class FrameCheck(models.Model):
    """One quality check of one frame: what was measured, against which threshold, the verdict.

    Kept per check so that an admin sees why a frame was rejected, and so that a changed threshold
    can be re-applied to the stored values without decoding the frame again.
    """

    frame = models.ForeignKey(Frame, on_delete=models.CASCADE, related_name="checks")
    name = models.CharField(max_length=16)  # one of labeling.quality.CHECKS
    value = models.FloatField(null=True, blank=True)
    threshold = models.FloatField(null=True, blank=True)
    passed = models.BooleanField()
    detail = models.CharField(max_length=255, blank=True)
    measured_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["frame_id", "id"]
        constraints = [models.UniqueConstraint(fields=["frame", "name"], name="frame_check_once")]
        indexes = [models.Index(fields=["name", "passed"])]

    def __str__(self) -> str:
        return f"{self.name} {'ok' if self.passed else 'FAIL'} ({self.value})"


from labeling.annotation_models import (  # noqa: E402 - registered with the app's models
    Assignment,
    FailureCode,
    FrameExclusion,
    Grade,
    InclusionKind,
    Mask,
    Rating,
)
from labeling.baseline_models import CameraBaseline  # noqa: E402 - registered with the app's models
from labeling.gold_models import GoldRailcar, GoldSource  # noqa: E402 - registered with the app's models
from labeling.guideline_models import Guideline  # noqa: E402 - registered with the app's models

__all__ = [
    "Assignment", "CameraBaseline", "FailureCode", "Frame", "FrameCheck", "FrameExclusion",
    "GoldRailcar", "GoldSource", "Grade", "Guideline", "InclusionKind", "Layer", "Mask", "Railcar",
    "Rating",
]  # fmt: skip
