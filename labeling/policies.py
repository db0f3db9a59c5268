"""The policies labeling reads; registered when the app loads (LabelingConfig.ready)."""

from dataclasses import fields

from labeling.quality import QualityThresholds
from scrapannot.policy import Policy, policy_values, register

QUALITY_PREFIX = "quality."
MIN_ELIGIBLE_LAYERS = "pool.min_eligible_layers"

# Why each default is what it is: see the comments on QualityThresholds and docs/quality-checks.md.
_QUALITY_DESCRIPTIONS = {
    "min_aspect": "Smallest width/height of a camera frame (aspect-ratio check).",
    "max_aspect": "Largest width/height of a camera frame (aspect-ratio check).",
    "min_sharpness": "Least fine-detail score of the railcar region (blur check, 0-1).",
    "min_mean_luma": "Least mean luminance of the railcar region, 0-255 (under-exposure check).",
    "max_clipped_share": "Largest share of clipped highlights, 0-1 (over-exposure check).",
    "max_haze": "Largest dark-channel haze score, 0-1 (dust/smoke check).",
    "min_occupancy": "Least share of the frame showing a loaded railcar, 0-1 (occupancy check).",
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
    )


def quality_thresholds() -> QualityThresholds:
    values = policy_values(QUALITY_PREFIX)
    return QualityThresholds.from_mapping(
        {key.removeprefix(QUALITY_PREFIX): value for key, value in values.items()}
    )
