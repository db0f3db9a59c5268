"""What becomes of a railcar's ratings: the consensus, the adjudication cases, the final label.

`Consensus` is the latest aggregation of a railcar's ratings (kept whatever its outcome).
`AdjudicationCase` is a railcar a senior inspector must decide. `FinalLabel` is the label the
dataset takes, with its provenance; a relabel supersedes the current one and keeps the old row,
so a dataset version always points at the label it froze (`adjudication.labels` sets it).
`RaterCalibration` is one estimate of a rater's offset and scale (adjudication.calibration).

None of this is ever shown to annotators.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from labeling.annotation_models import Grade


class Method(models.TextChoices):
    MEAN = "mean", "plain mean"
    CALIBRATED = "calibrated", "calibrated consensus (rater offset and scale removed)"


class StdKind(models.TextChoices):
    SAMPLE = "sample", "sample STD (n-1)"
    POPULATION = "population", "population STD (n)"


class Consensus(models.Model):
    class Outcome(models.TextChoices):
        FINAL = "final", "consensus became the final label"
        ADJUDICATION = "adjudication", "sent to adjudication"

    railcar = models.OneToOneField(
        "labeling.Railcar", on_delete=models.CASCADE, related_name="consensus"
    )
    n_ratings = models.PositiveSmallIntegerField()
    mean_pct = models.FloatField()
    std_pct = models.FloatField(help_text="dispersion of the ratings, per std_kind")
    std_kind = models.CharField(max_length=12, choices=StdKind.choices)
    # Null when no rater of this railcar has a calibration yet.
    calibrated_pct = models.FloatField(null=True, blank=True)
    calibrated_std_pct = models.FloatField(null=True, blank=True)
    method = models.CharField(max_length=12, choices=Method.choices)
    # The value the method gives (mean_pct or calibrated_pct); the final label's if final.
    value_pct = models.FloatField()
    grade_votes = models.JSONField(help_text="{grade: votes}")
    majority_grade = models.CharField(max_length=16, choices=Grade.choices, blank=True)
    std_threshold = models.FloatField()
    reasons = models.JSONField(default=list, help_text="why it went to adjudication")
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    # Ordering of the adjudication queue: STD over the threshold, plus 1 for a split grade vote.
    disagreement = models.FloatField()
    # SHA-256 of what the result depends on (ratings, calibrations, policies): a re-run with an
    # equal fingerprint changes nothing.
    fingerprint = models.CharField(max_length=64)
    computed_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "consensus"

    def __str__(self) -> str:
        return f"{self.value_pct:.1f} % ± {self.std_pct:.2f} ({self.outcome})"


class RationaleCode(models.TextChoices):
    AGREES_WITH_MAJORITY = "agrees_with_majority", "agrees with the rater majority"
    FRAME_EVIDENCE = "frame_evidence", "re-read from the frames"
    RATER_OUTLIER = "rater_outlier", "one rater is an outlier"
    EXCLUDED_FRAMES = "excluded_frames", "raters saw different frames (exclusions)"
    BORDERLINE_GRADE = "borderline_grade", "borderline between two grades"
    OTHER = "other", "other (see note)"


class AdjudicationCase(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "open"
        DECIDED = "decided", "decided by a senior inspector"
        # A re-applied threshold or method turned the consensus final before anyone decided.
        WITHDRAWN = "withdrawn", "withdrawn (consensus became final)"

    railcar = models.ForeignKey(
        "labeling.Railcar", on_delete=models.PROTECT, related_name="adjudication_cases"
    )
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    reasons = models.JSONField(default=list)
    disagreement = models.FloatField()
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="adjudications",
    )
    rationale_code = models.CharField(max_length=24, choices=RationaleCode.choices, blank=True)
    note = models.CharField(max_length=1000, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["railcar"], condition=Q(status="open"), name="adjudication_one_open_case"
            )
        ]
        indexes = [
            models.Index(
                fields=["-disagreement", "opened_at"],
                condition=Q(status="open"),
                name="adjudication_queue_order",
            )
        ]

    def __str__(self) -> str:
        return f"case {self.pk} ({self.status})"


# A railcar's current label: the one not superseded. The database allows one per railcar, and
# every read of "the current label" goes through FinalLabel.objects.current().
CURRENT = Q(superseded_at__isnull=True)


class FinalLabelQuerySet(models.QuerySet):
    def current(self) -> "FinalLabelQuerySet":
        """The labels in force (the ones a dataset version takes), one per railcar at most."""
        return self.filter(CURRENT)


class FinalLabel(models.Model):
    class Source(models.TextChoices):
        CONSENSUS = "consensus", "consensus of the raters"
        ADJUDICATION = "adjudication", "decided by a senior inspector"

    railcar = models.ForeignKey(
        "labeling.Railcar", on_delete=models.PROTECT, related_name="final_labels"
    )
    contamination_pct = models.DecimalField(max_digits=4, decimal_places=1)
    grade = models.CharField(max_length=16, choices=Grade.choices)
    source = models.CharField(max_length=16, choices=Source.choices)
    method = models.CharField(max_length=16, help_text="mean, calibrated or adjudication")
    # The dispersion of the ratings behind the label (a reliability indicator for training).
    std_pct = models.FloatField()
    ratings = models.ManyToManyField("labeling.Rating", related_name="final_labels")
    case = models.OneToOneField(
        AdjudicationCase,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="final_label",
    )
    # Everything needed to re-derive the label: rating values, thresholds, policy values,
    # calibrations used, the consensus it came from.
    provenance = models.JSONField()
    decided_at = models.DateTimeField()
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Set when a later label of the same railcar replaces this one; the row is kept.
    superseded_at = models.DateTimeField(null=True, blank=True)

    objects = FinalLabelQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["railcar"],
                condition=CURRENT,
                name="final_label_one_current",
            ),
            models.CheckConstraint(
                condition=Q(contamination_pct__gte=0) & Q(contamination_pct__lte=100),
                name="final_label_contamination_range",
            ),
        ]
        indexes = [models.Index(fields=["decided_at"])]

    def __str__(self) -> str:
        return f"{self.contamination_pct} % {self.grade} ({self.source})"


class RaterCalibration(models.Model):
    """One estimate of how a rater's contamination reads against the consensus truth:
    rating = offset + scale * truth + noise(noise_sd). The latest per rater is the one used."""

    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="calibrations"
    )
    offset = models.FloatField()
    scale = models.FloatField()
    noise_sd = models.FloatField()
    # False for a rater whose ratings carry no information (near-constant, scale at the floor,
    # noise far above the panel's; `flags` says which): left out of the calibrated consensus.
    informative = models.BooleanField(default=True)
    flags = models.JSONField(default=list, blank=True)
    n_ratings = models.PositiveIntegerField()
    estimated_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["annotator", "-estimated_at"])]

    def __str__(self) -> str:
        return f"offset {self.offset:+.2f}, scale {self.scale:.2f}"
