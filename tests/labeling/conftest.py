import pytest

from tests.labeling.double_blind_world import World, attack_world


@pytest.fixture
def world() -> World:
    """The double-blind attacker's world (tests/labeling/double_blind_world.py)."""
    return attack_world()
