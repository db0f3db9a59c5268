"""Gold railcars: railcars whose truth is known from outside the panel of raters.

A gold railcar stays in the annotation pool and is handed out like any other (labeling.pool, at
policy pool.gold_share of each annotator's leases), so that raters can be measured against the
truth. Its ratings score raters and anchor the calibration (adjudication.gold_scores,
adjudication.calibration); they never become an ordinary consensus. Nothing here is ever shown
to annotators.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.annotation_models import Grade


class GoldSource(models.TextChoices):
    LAB_ANALYSIS = "lab_analysis", "lab analysis"
    HAND_SORTED = "hand_sorted", "hand-sorted and weighed"
    SENIOR_PANEL = "senior_panel", "senior panel decision"


class GoldRailcar(models.Model):
    railcar = models.OneToOneField(
        "labeling.Railcar", on_delete=models.PROTECT, related_name="gold"
    )
    contamination_pct = models.DecimalField(max_digits=4, decimal_places=1)
    grade = models.CharField(max_length=16, choices=Grade.choices)
    source = models.CharField(max_length=16, choices=GoldSource.choices)
    # The lab report number, the weighing sheet, the panel's minutes: where the truth comes from.
    reference = models.CharField(max_length=200, blank=True)
    imported_at = models.DateTimeField()
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A retired gold railcar is handed out no more; the ratings it collected still score raters.
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(contamination_pct__gte=0) & Q(contamination_pct__lte=100),
                name="gold_contamination_range",
            )
        ]

    def __str__(self) -> str:
        return f"gold {self.contamination_pct} % {self.grade} ({self.source})"
