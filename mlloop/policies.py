"""The learning loop's admin policies; registered when the app loads (MlloopConfig.ready).

The dataset split shares are registered by mlloop.datasets (register_dataset_policies)."""

from scrapannot.policy import Policy, register

PROMOTION_MIN_GAIN = "mlloop.promotion_min_gain"


def register_mlloop_policies() -> None:
    register(
        Policy(
            key=PROMOTION_MIN_GAIN,
            default=0.0,
            description="A newly trained model becomes the production model by itself only if "
            "its validation MAE beats the production model's by more than this many percentage "
            "points (0: any improvement). Admins can still promote or roll back by hand.",
            minimum=0.0,
            maximum=100.0,
        ),
    )
