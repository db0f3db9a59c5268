"""Disputed railcars rated with evidence (masks, an exclusion) through the real pool and rating
path, their adjudication cases, and the adjudication pages' URLs, for the case page tests."""

import itertools
from collections.abc import Sequence
from decimal import Decimal

import numpy as np
from django.contrib.auth.models import User
from django.urls import reverse

from adjudication.models import AdjudicationCase
from labeling import annotation, pool
from labeling import rle as rle_codec
from labeling.models import Railcar
from scrapannot.models import AuditEvent
from scrapannot.roles import Role
from tests.conftest import user_with_roles
from tests.labeling.factories import annotators, pool_railcar

# Frames of tests.labeling.factories.pool_railcar are 96 x 54; one box per rater, apart.
MASK_BOXES = [(4, 4, 30, 20), (40, 4, 66, 20), (66, 30, 92, 50)]
EXCLUSION_NOTE = "haze over the whole car"
_prefixes = (f"adj{n}-" for n in itertools.count())


def rate_with_evidence(
    railcar: Railcar,
    raters: Sequence[User],
    values: Sequence[str],
    grades: Sequence[str],
    *,
    exclusion_note: str = EXCLUSION_NOTE,
) -> None:
    """Each rater leases the railcar, draws one box mask on layer 1's keyframe (rater i in
    MASK_BOXES[i]), the third rater excludes layer 1's second frame, and all rate it."""
    keyframe, second = railcar.frames.filter(layer__index=1).order_by("index")[:2]
    for i, (rater, value, grade) in enumerate(zip(raters, values, grades, strict=True)):
        assignment = pool.next_assignment(annotator=rater)
        assert assignment is not None and assignment.railcar_id == railcar.pk
        x0, y0, x1, y1 = MASK_BOXES[i % len(MASK_BOXES)]
        pixels = np.zeros((keyframe.height, keyframe.width), dtype=np.uint8)
        pixels[y0:y1, x0:x1] = 1
        annotation.save_mask(
            uid=assignment.uid, annotator=rater, frame_uid=keyframe.uid,
            rle=rle_codec.encode(pixels), engine="test",
            prompts={"points": [[(x0 + x1) / 2, (y0 + y1) / 2]], "labels": [1], "box": None},
        )  # fmt: skip
        if i == 2:
            annotation.exclude_frame(
                uid=assignment.uid, annotator=rater, frame_uid=second.uid,
                code="dust_smoke", note=exclusion_note,
            )  # fmt: skip
        annotation.submit_rating(
            uid=assignment.uid, annotator=rater, contamination_pct=Decimal(value), grade=grade,
            seconds_spent=40 + 10 * i,
        )  # fmt: skip


def disputed_railcar(
    values: Sequence[str] = ("10.0", "12.0", "14.0"),
    grades: Sequence[str] = ("3A", "3A", "3A1"),
    *,
    raters: Sequence[User] | None = None,
    **kwargs: str,
) -> Railcar:
    """A railcar rated through the real pool and rating path; aggregation runs through the
    real signal, eagerly, once the ratings commit."""
    railcar = pool_railcar(layers=2, frames_per_layer=2, raters=len(values))
    people = list(raters) if raters is not None else annotators(len(values), prefix=next(_prefixes))
    rate_with_evidence(railcar, people, values, grades, **kwargs)
    return railcar


def open_case_of(railcar: Railcar) -> AdjudicationCase:
    return AdjudicationCase.objects.get(railcar=railcar, status=AdjudicationCase.Status.OPEN)


def case_url(case: AdjudicationCase) -> str:
    return reverse("adjudication:case", args=[case.pk])


def image_url(case: AdjudicationCase, frame_uid: object) -> str:
    return reverse("adjudication:case-frame-image", args=[case.pk, frame_uid])


def senior_named(name: str, *extra: Role) -> User:
    return user_with_roles(name, Role.SENIOR_INSPECTOR, *extra)


GOOD = {"contamination_pct": "11.5", "grade": "3A1", "rationale_code": "frame_evidence"}


def decided_events() -> int:
    return AuditEvent.objects.filter(action="adjudication.decided").count()
