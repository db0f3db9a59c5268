"""What a senior inspector sees of a case: each rater's values, masks and exclusions, keyed by
rater letter and frame uid, never by who the rater is (no user, rating, assignment or mask id).
"""

from dataclasses import dataclass
from decimal import Decimal

from adjudication.models import AdjudicationCase
from adjudication.raters import rater_letter
from labeling.layers import layers_with_frames
from labeling.models import FailureCode, FrameExclusion, Mask, Rating

# One colour per rater letter, in order; the overlays and the table swatches share them. Chosen
# to stay apart from each other and from grey scrap (blue, orange, green, magenta, ...).
RATER_COLOURS = ["#3b82f6", "#f97316", "#22c55e", "#e11d48", "#a855f7", "#14b8a6", "#eab308"]


def case_frames(railcar_id: int, referenced: set[int]) -> list[dict[str, object]]:
    """The railcar's layers with their eligible frames (keyframe first), plus any frame a rater
    marked that has become ineligible since, as `filmstrip.js` wants them."""
    return [
        {
            "index": layer.index,
            "frames": [
                {"id": str(f.uid), "width": f.width, "height": f.height} for f in layer.frames
            ],
        }
        for layer in layers_with_frames(railcar_id=railcar_id, also=referenced)
    ]


@dataclass(frozen=True)
class RaterRow:
    letter: str
    colour: str
    contamination_pct: Decimal
    grade: str
    seconds_spent: int
    excluded: int
    masks: int


def case_evidence(case: AdjudicationCase) -> tuple[list[RaterRow], dict[str, object]]:
    """The raters' rows for the table, and what the page's script draws: frames, masks and
    exclusions keyed by rater letter and frame uid (no rating, assignment or mask id)."""
    ratings = list(Rating.objects.filter(railcar_id=case.railcar_id).order_by("id"))
    letter = {r.assignment_id: rater_letter(i) for i, r in enumerate(ratings)}
    masks = list(
        Mask.objects.filter(assignment_id__in=letter)
        .select_related("frame")
        .order_by("created_at", "id")
    )
    exclusions = list(
        FrameExclusion.objects.filter(assignment_id__in=letter)
        .select_related("frame")
        .order_by("id")
    )
    rows = [
        RaterRow(
            letter=letter[r.assignment_id],
            colour=RATER_COLOURS[i % len(RATER_COLOURS)],
            contamination_pct=r.contamination_pct,
            grade=r.grade,
            seconds_spent=r.seconds_spent,
            excluded=sum(e.assignment_id == r.assignment_id for e in exclusions),
            masks=sum(m.assignment_id == r.assignment_id for m in masks),
        )
        for i, r in enumerate(ratings)
    ]
    codes = dict(FailureCode.choices)
    data = {
        "layers": case_frames(case.railcar_id, {m.frame_id for m in masks + exclusions}),
        "raters": [{"letter": row.letter, "colour": row.colour} for row in rows],
        "masks": [
            {
                "rater": letter[m.assignment_id],
                "frame": str(m.frame.uid),
                "rle": m.rle,
                "kind": m.kind,
            }
            for m in masks
        ],
        "exclusions": [
            {
                "rater": letter[e.assignment_id],
                "frame": str(e.frame.uid),
                "code": codes.get(e.code, e.code),
                "note": e.note,
            }
            for e in exclusions
        ],
    }
    return rows, data
