from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from adjudication import calibration


class Command(BaseCommand):
    help = (
        "Estimate every rater's contamination offset, scale and noise from all ratings "
        "(adjudicated labels as anchors), store the changed ones and print the table."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        rows = calibration.estimate_and_store(actor_label="command:calibrate_raters")
        if not rows:
            self.stdout.write(
                f"No rater has {calibration.MIN_RATINGS} ratings on railcars rated at least "
                "twice yet: nothing estimated."
            )
            return
        names = dict(
            get_user_model()
            .objects.filter(pk__in=[row.annotator_id for row in rows])
            .values_list("pk", "username")
        )
        self.stdout.write(
            f"{'rater':<24} {'ratings':>7} {'offset':>7} {'scale':>6} {'noise sd':>8}  estimated"
        )
        for row in rows:
            self.stdout.write(
                f"{names[row.annotator_id][:24]:<24} {row.n_ratings:>7} "
                f"{row.offset:>+7.2f} {row.scale:>6.2f} {row.noise_sd:>8.2f}  "
                f"{row.estimated_at:%Y-%m-%d %H:%M:%S}"
            )
