"""The policies labeling reads; registered when the app loads (LabelingConfig.ready)."""

from dataclasses import fields

from labeling.quality import QualityThresholds
from labeling.quality_baseline import HistoryRule
from scrapannot.policy import (
    Policy,
    at_most,
    policy_values,
    register,
    register_rule,
)

QUALITY_PREFIX = "quality."
MIN_ELIGIBLE_LAYERS = "pool.min_eligible_layers"
RATERS_PER_RAILCAR = "pool.raters_per_railcar"
LEASE_MINUTES = "pool.lease_minutes"
RANDOM_PICK_SHARE = "pool.random_pick_share"
GOLD_SHARE = "pool.gold_share"
BASELINE_FRAMES = "quality.baseline_frames"
BASELINE_MIN_FRAMES = "quality.baseline_min_frames"
BASELINE_QUANTILE = "quality.baseline_quantile"

# Why each default is what it is: see the comments on QualityThresholds and docs/quality-checks.md.
_QUALITY_DESCRIPTIONS = {
    "min_aspect": "Smallest width/height of a camera frame (aspect-ratio check).",
    "max_aspect": "Largest width/height of a camera frame (aspect-ratio check).",
    "min_sharpness": "Least fine-detail score of the railcar region (blur check, 0-1).",
    "min_mean_luma": "Least mean luminance of the railcar region, 0-255 (under-exposure check).",
    "max_clipped_share": "Largest share of clipped highlights, 0-1 (over-exposure check).",
    "max_haze": "Largest dark-channel haze score, 0-1 (dust/smoke check), for a camera without "
    "enough history for a baseline of its own.",
    "max_veil": "Largest veil a frame may add to its camera's clear view, (haze - baseline) / "
    "(1 - baseline), 0-1 (dust/smoke check, cameras with a baseline).",
    "max_haze_baseline": "Highest clear-view haze a camera's history may set as its normal, 0-1: "
    "a camera that always reads hazier is not excused (dust/smoke check).",
    "min_occupancy": "Least share of the frame showing a loaded railcar, 0-1 (occupancy check); "
    "a camera with a baseline holds its frames without a railcar box to this times its usual "
    "texture share.",
    "min_occupancy_normal": "Lowest usual texture share a camera's history may set for its "
    "frames without a railcar box, 0-1: a camera that never sees texture is not excused "
    "(occupancy check).",
    "max_highvis_share": "Largest share of safety colours in the railcar region, 0-1 "
    "(extraneous-object check).",
}


def register_labeling_policies() -> None:
    register(
        *(
            Policy(
                key=QUALITY_PREFIX + f.name,
                default=f.default,
                description=_QUALITY_DESCRIPTIONS.get(f.name, f.name),
                minimum=0.0,
            )
            for f in fields(QualityThresholds)
        ),
        Policy(
            key=MIN_ELIGIBLE_LAYERS,
            default=3,
            description="A railcar enters the annotation pool once this many of its layers have "
            "an eligible frame; with fewer it goes to the admins' attention list.",
            minimum=1,
            maximum=1000,
        ),
        Policy(
            key=RATERS_PER_RAILCAR,
            default=3,
            description="Distinct annotators who rate each railcar (seed 000: at least three). "
            "Applies to railcars entering the pool from now on.",
            minimum=1,
            maximum=15,
        ),
        Policy(
            key=RANDOM_PICK_SHARE,
            default=0.15,
            description="Share of the railcars handed out that the pool draws at random from "
            "everything waiting, instead of taking the highest priority (the learning loop's "
            "uncertainty): an unbiased sample keeps reaching annotators, for honest evaluation "
            "of the next model.",
            minimum=0.0,
            maximum=1.0,
        ),
        Policy(
            key=GOLD_SHARE,
            default=0.05,
            description="Share of each annotator's leases that the pool draws from the gold "
            "railcars (truth known from a lab analysis, a hand sort or a senior panel) they have "
            "not rated yet, at random so that nobody can tell which: their ratings measure the "
            "rater against the truth and anchor the calibration, and never become a label.",
            minimum=0.0,
            maximum=0.5,
        ),
        Policy(
            key=LEASE_MINUTES,
            default=30,
            description="How long an annotator holds a railcar before its slot returns to the "
            "pool: long enough for one railcar.",
            minimum=2,
            maximum=24 * 60,
        ),
    )
    _register_baseline_policies()
    register_rule(
        keys=(QUALITY_PREFIX + "min_aspect", QUALITY_PREFIX + "max_aspect"),
        check=at_most(QUALITY_PREFIX + "min_aspect", QUALITY_PREFIX + "max_aspect"),
    )


def _register_baseline_policies() -> None:
    # Why each default is what it is: see the comments on quality_baseline.HistoryRule.
    default = HistoryRule()
    register(
        Policy(
            key=BASELINE_FRAMES,
            default=default.frames,
            description="A camera's quality baseline (its normal haze) is read from its last this "
            "many checked frames (refreshed hourly).",
            minimum=20,
            maximum=100_000,
        ),
        Policy(
            key=BASELINE_MIN_FRAMES,
            default=default.min_frames,
            description="A camera with fewer checked frames than this has no baseline: its frames "
            "are held to the absolute max_haze.",
            minimum=1,
            maximum=100_000,
        ),
        Policy(
            key=BASELINE_QUANTILE,
            default=default.quantile,
            description="A camera's clear-view haze is this quantile of its recent haze values: "
            "low, so that a hazy stretch does not become its normal.",
            minimum=0.0,
            maximum=0.5,
        ),
    )


def history_rule() -> HistoryRule:
    values = policy_values("quality.baseline_")  # one query
    return HistoryRule(
        frames=int(values[BASELINE_FRAMES]),
        min_frames=int(values[BASELINE_MIN_FRAMES]),
        quantile=float(values[BASELINE_QUANTILE]),
    )


def quality_thresholds() -> QualityThresholds:
    values = policy_values(QUALITY_PREFIX)
    return QualityThresholds.from_mapping(
        {key.removeprefix(QUALITY_PREFIX): value for key, value in values.items()}
    )
