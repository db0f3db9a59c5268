"""The calibration's Student-t residuals: a rater's slips do not bend the scales."""

import numpy as np
import pytest

from adjudication.calibration import fit

# (offset, scale, noise SD) of four raters; raters 1-3 slip now and then, rater 4 never does.
RATERS = {1: (0.3, 1.2, 0.3), 2: (-0.2, 0.8, 0.3), 3: (0.0, 1.1, 0.3), 4: (0.1, 0.95, 0.2)}
SLIP_SHARE, SLIP_SD = 0.1, 6.0


def slipping_panel(seed: int, railcars: int = 600) -> tuple[list, dict[int, float]]:
    """Every railcar rated by three of the four raters; one reading in ten of raters 1-3 is off
    by N(0, 6) points (a slip of the hand, a misread railcar): noise with heavy tails. The first
    40 railcars have known truth, as gold railcars would."""
    rng = np.random.default_rng(seed)
    truth = np.clip(rng.gamma(1.6, 1.7, railcars), 0, 15)
    observations = []
    for i, t in enumerate(truth):
        for rater in rng.choice(4, 3, replace=False) + 1:
            offset, scale, sd = RATERS[rater]
            noise = rng.normal(0, sd)
            if rater != 4 and rng.random() < SLIP_SHARE:
                noise += rng.normal(0, SLIP_SD)
            reading = round(float(np.clip(offset + scale * t + noise, 0, 100)), 1)
            observations.append((i, int(rater), reading))
    return observations, {i: round(float(truth[i]), 1) for i in range(40)}


@pytest.mark.parametrize("seed", range(4))
def test_slips_of_a_few_raters_do_not_bend_anyones_scale(seed):
    observations, anchors = slipping_panel(seed)

    result = fit(observations, anchors=anchors)

    # A normal likelihood let the slips move each railcar's truth for all three of its raters:
    # scales up to 0.16 off on these seeds. Under t residuals every scale is within 0.04.
    for rater, (_offset, scale, _sd) in RATERS.items():
        assert result.calibrations[rater].scale == pytest.approx(scale, abs=0.04)
    # The steady rater's noise is no longer inflated by the others' slips; the slipping raters'
    # noise SD still counts their slips, so the consensus weights them less.
    assert result.calibrations[4].noise_sd == pytest.approx(0.2, abs=0.06)
    assert all(result.calibrations[r].noise_sd > 0.6 for r in (1, 2, 3))
