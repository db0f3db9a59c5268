"""A camera's quality baseline: what its recent history says its normal view reads.

Derived data, refreshed from the stored checks (labeling.camera_baselines), never edited by hand:
the thresholds it implies are policy (labeling.quality_baseline, labeling.policies).
"""

from django.db import models


class CameraBaseline(models.Model):
    """One row per (line, camera) that sent checked frames."""

    line = models.CharField(max_length=32)
    camera = models.CharField(max_length=64)
    # The clear-view haze h0: a low quantile of the camera's recent haze values (uncapped; the
    # cap is policy and applied where the baseline is used).
    haze = models.FloatField(null=True, blank=True)
    # What its loaded railcars read without a box: the 75th percentile of the occupancy of its
    # recent box-less frames (None: it sends boxes).
    occupancy = models.FloatField(null=True, blank=True)
    frames = models.PositiveIntegerField(default=0)  # how many frames the haze was computed from
    occupancy_frames = models.PositiveIntegerField(default=0)  # how many box-less frames
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["line", "camera"]
        constraints = [
            models.UniqueConstraint(fields=["line", "camera"], name="camera_baseline_once")
        ]

    def __str__(self) -> str:
        return f"{self.line} · {self.camera}: haze {self.haze}, {self.frames} frames"
