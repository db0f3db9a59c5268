"""What annotators make: assignments (leases on a railcar), exclusions, masks, ratings.

Imported by labeling.models so that Django sees them; kept apart to keep each file small.
The invariants the whole product rests on are database constraints here: one assignment per
annotator and railcar, one holder per slot, one rating per assignment and per annotator and
railcar, contamination within 0-100.
"""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Grade(models.TextChoices):
    G3A = "3A", "3A"
    G3A1 = "3A1", "3A1"
    G3AH = "3AH", "3AH"
    CAST_IRON = "cast iron", "cast iron"


class InclusionKind(models.TextChoices):
    """What a mask covers: the policy list of non-metallic inclusions (issue 16)."""

    SOIL = "soil", "soil"
    WOOD = "wood", "wood"
    RUBBER = "rubber", "rubber"
    CONCRETE = "concrete", "concrete"
    OTHER = "other", "other"


class FailureCode(models.TextChoices):
    BLUR = "blur", "blur"
    EXPOSURE = "exposure", "exposure"
    DUST_SMOKE = "dust_smoke", "dust/smoke"
    OCCLUSION = "occlusion", "occlusion"
    NO_RAILCAR = "no_railcar", "no railcar"
    EXTRANEOUS_OBJECT = "extraneous_object", "extraneous object"
    CORRUPT = "corrupt", "corrupt"
    OTHER = "other", "other"


class Assignment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "active"
        SUBMITTED = "submitted", "submitted"
        RELEASED = "released", "released"
        EXPIRED = "expired", "expired"

    HOLDING = (Status.ACTIVE, Status.SUBMITTED)

    # The only id an annotator ever sees for what they work on.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    pseudonym = models.CharField(max_length=32, unique=True)
    railcar = models.ForeignKey(
        "labeling.Railcar", on_delete=models.PROTECT, related_name="assignments"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    slot = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.ACTIVE)
    leased_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    release_reason = models.CharField(max_length=200, blank=True)
    # How the pool chose the railcar for this lease: a random draw (policy
    # pool.random_pick_share) rather than the priority order. Random picks are an unbiased
    # sample of the pool, for evaluating the next model honestly. Never shown to annotators.
    random_pick = models.BooleanField(default=False)
    # A lease of a gold railcar (labeling.gold_models), taken outside the railcar's slots: it
    # never counts against open_slots. Never shown to annotators.
    gold_pick = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["railcar", "annotator"], name="assignment_once_per_annotator"
            ),
            models.UniqueConstraint(
                fields=["railcar", "slot"],
                condition=Q(status__in=["active", "submitted"]),
                name="assignment_one_holder_per_slot",
            ),
            # One railcar at a time per annotator.
            models.UniqueConstraint(
                fields=["annotator"],
                condition=Q(status="active"),
                name="assignment_one_active_per_annotator",
            ),
            models.CheckConstraint(condition=Q(slot__gte=1), name="assignment_slot_positive"),
        ]
        indexes = [
            models.Index(fields=["annotator", "status"]),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="active"),
                name="assignment_active_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.pseudonym} ({self.status})"


class Rating(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.PROTECT, related_name="rating")
    # Denormalized from the assignment so that the database itself refuses a second rating of
    # one railcar by one annotator, whatever path the request took.
    railcar = models.ForeignKey(
        "labeling.Railcar", on_delete=models.PROTECT, related_name="ratings"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ratings"
    )
    contamination_pct = models.DecimalField(max_digits=4, decimal_places=1)
    grade = models.CharField(max_length=16, choices=Grade.choices)
    seconds_spent = models.PositiveIntegerField()
    submitted_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["railcar", "annotator"], name="rating_once_per_rater"),
            models.CheckConstraint(
                condition=Q(contamination_pct__gte=0) & Q(contamination_pct__lte=100),
                name="rating_contamination_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contamination_pct} % {self.grade}"


class FrameExclusion(models.Model):
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="exclusions")
    frame = models.ForeignKey("labeling.Frame", on_delete=models.PROTECT, related_name="+")
    code = models.CharField(max_length=24, choices=FailureCode.choices)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["assignment", "frame"], name="exclusion_once")
        ]

    def __str__(self) -> str:
        return f"excluded: {self.code}"


class Mask(models.Model):
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    assignment = models.ForeignKey(Assignment, on_delete=models.CASCADE, related_name="masks")
    frame = models.ForeignKey("labeling.Frame", on_delete=models.PROTECT, related_name="+")
    rle = models.JSONField(help_text="COCO compressed RLE: {size: [h, w], counts: str}")
    prompts = models.JSONField()
    engine = models.CharField(max_length=80)
    area = models.PositiveIntegerField()
    kind = models.CharField(
        max_length=16, choices=InclusionKind.choices, default=InclusionKind.OTHER
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["assignment", "frame"])]

    def __str__(self) -> str:
        return f"mask of {self.area} px ({self.engine})"
