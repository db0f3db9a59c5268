from dataclasses import replace

import numpy as np
import pytest

from operations import synth
from tests.labeling.double_blind_world import World, attack_world
from tests.labeling.quality_frames import SIZE, bgr


@pytest.fixture
def world() -> World:
    """The double-blind attacker's world (tests/labeling/double_blind_world.py)."""
    return attack_world()


# The quality check tests' synthetic railcar, rendered once per test module.


@pytest.fixture(scope="module")
def unloading() -> synth.SyntheticUnloading:
    return synth.render_unloading(
        rng=np.random.default_rng(11),
        width=SIZE[0],
        height=SIZE[1],
        layers=(2, 2),
        frames_per_layer=3,
        defect_share=0.0,
    )


@pytest.fixture(scope="module")
def railcar(unloading) -> dict:
    """A clean frame with the magnet away, one with the magnet and boom over the scrap, the empty
    railcar, and the railcar box."""
    grab = next(i for i, g in enumerate(unloading.grabs) if g is not None)
    away = next(i for i, g in enumerate(unloading.grabs) if g is None)
    emptied = replace(unloading, defects=["empty"] * len(unloading))
    return {
        "clean": bgr(unloading.frame(away)),
        "grab": bgr(unloading.frame(grab + 1)),
        "empty": bgr(emptied.frame(away)),
        "box": tuple(float(v) for v in unloading.layout.railcar_box),
    }
