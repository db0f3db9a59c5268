"""The inclusion head's dense map (mlloop.inclusion.dense_map): a hypercolumn of several backbone
stages on one grid, the settings that choose it, and the head's cell sample."""

import numpy as np
import pytest
import torch
from django.core.exceptions import ValidationError

from mlloop.config import config_from_dict, map_key, model_config
from mlloop.features import FeatureExtractor
from mlloop.inclusion import dense_map, fit_inclusion_head
from tests.mlloop.model_factories import TINY


def test_stages_are_brought_to_the_grid_of_one_stage_and_concatenated():
    fine = torch.arange(16.0).reshape(1, 1, 4, 4)
    grid = torch.zeros(1, 2, 2, 2)
    coarse = torch.ones(1, 3, 1, 1) * 7

    out = dense_map({1: fine, 2: grid, 3: coarse}, (1, 2, 3), 2)

    assert out.shape == (1, 1 + 2 + 3, 2, 2)
    assert out[0, 0].tolist() == [[2.5, 4.5], [10.5, 12.5]]  # each cell's mean
    assert torch.all(out[0, 3:] == 7)  # upsampled


@pytest.mark.django_db
def test_the_extractor_returns_the_hypercolumn_on_the_stride_8_grid():
    from PIL import Image

    config = model_config(**{**TINY, "image_size": 64})
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 96, 3), np.uint8))
    extractor = FeatureExtractor(config)
    with torch.inference_mode():
        found = extractor.backbone.forward_intermediates(
            torch.from_numpy(extractor.preprocess(image))[None],
            indices=[0, 1, 2],
            intermediates_only=True,
            stop_early=True,
        )

    _, (feature_map,) = extractor.extract_maps([image])

    assert feature_map.shape == (*found[2].shape[2:], sum(m.shape[1] for m in found))


def test_settings_saved_before_the_hypercolumn_keep_their_one_stage_map():
    old = model_config(**TINY).as_dict()
    del old["dense_stages"]
    old["dense_stage"] = 3

    config = config_from_dict(old)

    assert config.dense_stages == (3,) and config.dense_indices == (3,)
    assert map_key(config) != map_key(config_from_dict({**old, "dense_stages": [1, 2, 3]}))
    with pytest.raises(ValidationError, match="dense_stages"):
        config_from_dict({**old, "dense_stages": []})
    with pytest.raises(ValidationError, match="dense_stages"):
        config_from_dict({**old, "dense_stages": [2, 2]})


def test_the_head_samples_cells_across_maps_without_copying_them_all():
    rng = np.random.default_rng(0)
    maps, targets = [], []
    for _ in range(30):
        target = (rng.random((20, 30)) < 0.2).astype(np.float32)
        cells = rng.normal(0, 1, (20, 30, 8)).astype(np.float16)
        cells[..., 0] += 3 * target  # channel 0 shows the inclusion
        maps.append(cells)
        targets.append(target)

    head = fit_inclusion_head(maps, targets)

    held_out = rng.normal(0, 1, (20, 30, 8)).astype(np.float32)
    truth = rng.random((20, 30)) < 0.2
    held_out[..., 0] += 3 * truth
    cover = head.coverage(held_out)
    assert cover[truth].mean() > 0.6 > 0.2 > cover[~truth].mean()
    with pytest.raises(ValueError, match="differ in size"):
        fit_inclusion_head(maps[:1], [np.zeros((2, 2), np.float32)])
