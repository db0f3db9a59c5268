"""The live estimates' policy: how a model's expected error becomes a confidence."""

from scrapannot.policy import Policy, register

ERROR_TOLERANCE = "live.error_tolerance_pct"


def register_live_policies() -> None:
    register(
        Policy(
            key=ERROR_TOLERANCE,
            default=2.0,
            description="The expected absolute error (percentage points of contamination) at "
            "which a live estimate's confidence reaches 0: confidence = max(0, 1 - expected "
            "error / this). At the default 2.0, an estimate expected within 0.5 pp has "
            "confidence 0.75.",
            minimum=0.1,
            maximum=50.0,
        ),
    )
