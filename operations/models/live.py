"""The operator application's records (seed 000, section 6.2): the production model's live
estimates of each unloading, operators' decisions on them, and escalations to manual review.

Every row here is append-only: an estimate is never updated in place (a new layer or a new model
writes a new row), and an operator's amendment never overwrites the model's output.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.annotation_models import Grade
from labeling.models import Railcar
from mlloop.models import ModelVersion


class LiveEstimate(models.Model):
    """The production model's estimate of one railcar from the layers scored so far."""

    railcar = models.ForeignKey(Railcar, on_delete=models.CASCADE, related_name="live_estimates")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    # How many eligible layers (keyframes that passed the checks) went into it.
    layers_scored = models.PositiveIntegerField()
    contamination_pct = models.FloatField()
    grade = models.CharField(max_length=16, choices=Grade.choices)
    grade_probs = models.JSONField(default=dict)
    # 0-1; 1 - (expected absolute error / the policy's tolerance), floored at 0 (operations.live).
    confidence = models.FloatField()
    expected_error_pct = models.FloatField()
    # [{"layer": index, "attention": w, "contamination_pct": v, "flags": [...]}, ...]
    per_layer = models.JSONField(default=list)
    # The quality flags of the frames that went into it: {"blur": 2, ...}
    quality_flags = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["railcar_id", "-layers_scored", "-id"]
        constraints = [
            # A redelivered scoring task finds its estimate written and stops (exactly once).
            models.UniqueConstraint(
                fields=["railcar", "model_version", "layers_scored"],
                name="live_estimate_once",
            ),
            models.CheckConstraint(
                condition=Q(contamination_pct__gte=0) & Q(contamination_pct__lte=100),
                name="live_estimate_contamination_range",
            ),
        ]
        indexes = [models.Index(fields=["-created_at"])]

    def __str__(self) -> str:
        return f"estimate of {self.railcar_id}: {self.contamination_pct:.1f} % {self.grade}"


class OperatorDecision(models.Model):
    """An operator accepts the estimate or amends it, with a rationale code and a note."""

    class Action(models.TextChoices):
        ACCEPT = "accept", "accepted the estimate"
        AMEND = "amend", "amended the estimate"

    railcar = models.ForeignKey(
        Railcar, on_delete=models.CASCADE, related_name="operator_decisions"
    )
    estimate = models.ForeignKey(LiveEstimate, on_delete=models.PROTECT, related_name="decisions")
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=8, choices=Action.choices)
    # Set on an amendment (either or both); null/blank where the operator kept the model's value.
    contamination_pct = models.FloatField(null=True, blank=True)
    grade = models.CharField(max_length=16, choices=Grade.choices, blank=True)
    rationale_code = models.CharField(max_length=32, blank=True)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["railcar_id", "-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(contamination_pct__isnull=True)
                | (Q(contamination_pct__gte=0) & Q(contamination_pct__lte=100)),
                name="operator_decision_contamination_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} on {self.railcar_id}"


class Escalation(models.Model):
    """A railcar sent to manual review by the escalation policies."""

    class Route(models.TextChoices):
        POOL = "pool", "annotation pool, at the front"
        SENIOR = "senior", "senior inspector"

    railcar = models.ForeignKey(Railcar, on_delete=models.CASCADE, related_name="escalations")
    route = models.CharField(max_length=8, choices=Route.choices)
    # [{"rule": "contamination_above", "value": 4.2, "threshold": 3.0}, ...]
    reasons = models.JSONField(default=list)
    estimate = models.ForeignKey(
        LiveEstimate, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.ForeignKey(
        OperatorDecision, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # Re-evaluating a railcar (a new estimate, a second decision) escalates it again
            # only along a route it has not taken (operations.escalation).
            models.UniqueConstraint(fields=["railcar", "route"], name="escalation_once_per_route"),
        ]

    def __str__(self) -> str:
        return f"escalation of {self.railcar_id} to {self.route}"
