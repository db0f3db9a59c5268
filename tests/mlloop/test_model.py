"""The attention-MIL model: shapes, attention, bag sampling, loss, backbones and their weights,
and the settings that build them."""

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from django.core.exceptions import ValidationError

from mlloop.config import feature_key, model_config
from mlloop.model import BackboneError, MilModel, build_backbone, mil_loss
from mlloop.training import collate

torch.set_num_threads(2)


def padded(rng: np.random.Generator, lengths: list[int], dim: int = 8):
    bags = [rng.normal(size=(n, dim)).astype(np.float32) for n in lengths]
    return bags, *collate(bags, None, None)


def test_it_gives_one_contamination_and_a_grade_distribution_per_bag():
    model = MilModel(8, 4).eval()
    _, features, mask = padded(np.random.default_rng(0), [3, 5, 1])

    output = model(features, mask)

    assert features.shape == (3, 5, 8)
    assert output.contamination.shape == (3,)
    assert output.grade_logits.shape == (3, 4)
    assert output.attention.shape == (3, 5)


def test_attention_sums_to_one_over_each_bag_and_ignores_padding():
    model = MilModel(8, 4).eval()
    bags, features, mask = padded(np.random.default_rng(1), [2, 5, 4])

    output = model(features, mask)

    assert torch.allclose(output.attention.sum(dim=1), torch.ones(3))
    assert torch.all(output.attention[~mask] == 0)
    assert torch.all(output.attention[mask] > 0)
    # The short bag alone gives what it gave padded among longer ones.
    alone = model(*collate([bags[0]], None, None))
    assert torch.allclose(alone.contamination, output.contamination[:1], atol=1e-6)
    assert torch.allclose(alone.grade_logits, output.grade_logits[:1], atol=1e-6)


def test_the_heads_have_the_shape_of_seed_000():
    model = MilModel(32, 4, dropout=0.3, ensemble=3)
    assert len(model.regressors) == len(model.classifiers) == 3
    heads = [(h, 1) for h in model.regressors] + [(h, 4) for h in model.classifiers]
    for head, out in heads:
        kinds = [type(layer).__name__ for layer in head]
        assert kinds == ["Linear", "ReLU", "Dropout", "Linear"]
        assert (head[0].in_features, head[0].out_features) == (32, 256)
        assert head[2].p == 0.3 and head[3].out_features == out
    kinds = [type(layer).__name__ for layer in model.attention]
    assert kinds == ["Linear", "Tanh", "Linear"]


def test_a_bag_is_sampled_to_s_distinct_layers_uniformly():
    rng = np.random.default_rng(2)
    bag = np.arange(5, dtype=np.float32).reshape(5, 1)  # layer i holds the value i
    counts = np.zeros(5)
    for _ in range(2000):
        features, mask = collate([bag, bag[:1]], 2, rng)
        assert features.shape == (2, 2, 1)
        chosen = features[0, :, 0].numpy()
        assert len(set(chosen)) == 2
        assert mask[1].tolist() == [True, False]  # a bag shorter than s keeps what it has
        counts[chosen.astype(int)] += 1
    # Each layer is drawn with probability 2/5: 800 of 2000 (binomial STD about 22).
    assert np.all(np.abs(counts - 800) < 100), counts


def test_the_loss_is_regression_plus_lambda_times_classification():
    model = MilModel(8, 4).eval()
    _, features, mask = padded(np.random.default_rng(3), [2, 3])
    output = model(features, mask)
    target = torch.tensor([0.5, -1.0])
    grades = torch.tensor([1, 3])
    mse = ((output.contamination - target) ** 2).mean()
    ce = torch.nn.functional.cross_entropy(output.grade_logits, grades)

    assert torch.isclose(mil_loss(output, target, grades, 0.0), mse)
    assert torch.isclose(mil_loss(output, target, grades, 0.5), mse + 0.5 * ce)


def test_the_backbone_has_no_classifier_and_gives_its_feature_dimension():
    config = model_config(backbone="test_resnet", image_size=32)
    backbone = build_backbone(config)
    with torch.inference_mode():
        out = backbone(torch.zeros(2, 3, 32, 32))
    assert out.shape == (2, backbone.num_features)
    assert not backbone.training


def test_without_weights_the_backbone_is_a_function_of_the_seed():
    a = build_backbone(model_config(backbone="test_resnet", seed=3))
    b = build_backbone(model_config(backbone="test_resnet", seed=3))
    c = build_backbone(model_config(backbone="test_resnet", seed=4))
    pa, pb, pc = (next(m.parameters()) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)


def test_pretrained_weights_come_from_a_local_file(tmp_path: Path):
    import timm

    torch.manual_seed(11)
    # A whole checkpoint as timm would save it, classifier included, wrapped in "state_dict".
    source = timm.create_model("test_resnet", pretrained=False, num_classes=10)
    path = tmp_path / "weights.pth"
    torch.save({"state_dict": source.state_dict()}, path)

    backbone = build_backbone(model_config(backbone="test_resnet", pretrained_weights=str(path)))

    source.reset_classifier(0)
    source.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(backbone(x), source(x))


def test_a_missing_weights_file_is_a_clear_error(tmp_path: Path):
    config = model_config(backbone="test_resnet", pretrained_weights=str(tmp_path / "nope.pth"))
    with pytest.raises(BackboneError, match="not found"):
        build_backbone(config)
    with pytest.raises(ValidationError, match="cannot be read"):
        feature_key(config)


def test_weights_of_another_architecture_are_refused(tmp_path: Path):
    import timm

    path = tmp_path / "effnet.pth"
    torch.save(timm.create_model("test_efficientnet", num_classes=0).state_dict(), path)
    config = model_config(backbone="test_resnet", pretrained_weights=str(path))
    with pytest.raises(BackboneError, match="does not fit test_resnet"):
        build_backbone(config)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint", b"PK\x03\x04truncated zip"])
def test_a_corrupt_or_truncated_weights_file_is_refused(tmp_path: Path, content: bytes):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(BackboneError, match="cannot be read"):
        build_backbone(model_config(backbone="test_resnet", pretrained_weights=str(path)))


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_weights_file_that_runs_code_when_unpickled_is_refused_unrun(tmp_path: Path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"state_dict": _Exploit(marker)}))

    with pytest.raises(BackboneError):
        build_backbone(model_config(backbone="test_resnet", pretrained_weights=str(path)))
    assert not marker.exists()


def test_an_unknown_backbone_is_a_clear_error():
    with pytest.raises(BackboneError, match="unknown backbone"):
        build_backbone(model_config(backbone="resnet_does_not_exist"))


def test_settings_come_from_settings_mlloop_with_overrides(settings):
    settings.MLLOOP = {**settings.MLLOOP, "BACKBONE": "test_vit", "EPOCHS": 7, "LAMBDA": 0.25}
    config = model_config(epochs=2)
    assert (config.backbone, config.epochs, config.lam) == ("test_vit", 2, 0.25)


@pytest.mark.parametrize(
    "overrides",
    [
        {"colour": "red"},
        {"epochs": 0},
        {"epochs": 2.5},
        {"bag_size": -1},
        {"image_size": 100_000},
        {"lr": float("nan")},
        {"dropout": 1.0},
        {"lam": -0.1},
        {"backbone": ""},
        {"grades": ["3A"]},
    ],
)
def test_bad_settings_are_refused_with_the_field_named(overrides):
    with pytest.raises(ValidationError):
        model_config(**overrides)


def test_the_feature_key_follows_backbone_size_and_weights(tmp_path: Path):
    base = model_config(backbone="test_resnet", image_size=64)
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"one")
    with_weights = model_config(
        backbone="test_resnet", image_size=64, pretrained_weights=str(weights)
    )
    key = feature_key(with_weights)

    assert feature_key(base) == feature_key(model_config(backbone="test_resnet", image_size=64))
    assert feature_key(base) != feature_key(model_config(backbone="test_resnet", image_size=32))
    assert feature_key(base) != feature_key(model_config(backbone="test_vit", image_size=64))
    assert feature_key(base) != feature_key(
        model_config(backbone="test_resnet", seed=1, image_size=64)
    )
    assert feature_key(base) != key
    # The training settings of the heads do not touch the features.
    assert feature_key(base) == feature_key(
        model_config(backbone="test_resnet", image_size=64, epochs=3)
    )
    weights.write_bytes(b"two!")  # different content: a different key
    assert feature_key(with_weights) != key
    assert len(key) <= 64


# --- input whitening and the railcar crop ------------------------------------------------------


def test_whitening_gives_unit_variance_and_leaves_empty_directions_at_zero():
    from mlloop.training import input_whitening

    rng = np.random.default_rng(3)
    # 12 layers of 40 correlated dimensions: at most 11 directions carry variance.
    layers = rng.normal(size=(12, 5)) @ rng.normal(size=(5, 40)) * 10 + 3
    mean, whiten = input_whitening(layers.astype(np.float32))

    white = (layers - mean) @ whiten
    variances = np.sort(white.var(axis=0, ddof=1))[::-1]
    # The 5 real directions at unit variance, less the light shrinkage (1 % of the mean).
    assert np.all((variances[:5] > 0.9) & (variances[:5] <= 1.0))
    assert np.allclose(variances[5:], 0.0, atol=1e-6)
    # A new layer off the training directions is not blown up (the bug this replaced: dividing
    # by a near-zero per-dimension STD multiplied such a layer by up to 1e6).
    stray = rng.normal(size=(1, 40)).astype(np.float32) * 10
    assert np.abs((stray - mean) @ whiten).max() < 100


@pytest.mark.parametrize(
    "layers", [np.zeros((1, 6)), np.full((5, 6), 2.5)], ids=["one layer", "constant"]
)
def test_whitening_degenerates_to_the_identity(layers):
    from mlloop.training import input_whitening

    _, whiten = input_whitening(layers.astype(np.float32))
    assert np.array_equal(whiten, np.eye(6, dtype=np.float32))


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([10, 5, 90, 60], (10, 5, 90, 60)),
        ([-20, -5, 500, 500], (0, 0, 100, 80)),  # clipped to the frame
        ([10.4, 5.6, 89.2, 59.9], (10, 5, 90, 60)),
        ([10, 5, 15, 60], None),  # narrower than the minimum crop
        ([10, 5, "x", 60], None),
        ([10, 5, float("nan"), 60], None),
        ([10, 5, 90], None),
        (None, None),
        ("1,2,3,4", None),
    ],
)
def test_the_railcar_crop_box_is_clipped_or_refused(box, expected):
    from mlloop.features import crop_box

    assert crop_box(box, 100, 80) == expected


def test_the_crop_and_the_stages_are_part_of_the_feature_key():
    base = model_config(backbone="test_resnet", image_size=32)
    assert feature_key(base) != feature_key(model_config(backbone="test_resnet", image_size=32,
                                                         crop_to_railcar=False))  # fmt: skip
    assert feature_key(base) != feature_key(
        model_config(backbone="test_resnet", image_size=32, feature_stages=(0,))
    )
    for bad in [(0, 0), (-1,), (16,), (True,), ("1",)]:
        with pytest.raises(ValidationError):
            model_config(backbone="test_resnet", image_size=32, feature_stages=bad)


def test_the_direct_term_reads_the_layers_mean_summary_and_ignores_padding():
    model = MilModel(8, 4, ensemble=2, direct_dims=3).eval()
    with torch.no_grad():
        for line in model.direct:
            line.weight.fill_(1.0)
            line.bias.zero_()
    bags, features, mask = padded(np.random.default_rng(2), [2, 4])
    without = MilModel(8, 4, ensemble=2).eval()
    without.load_state_dict(
        {k: v for k, v in model.state_dict().items() if not k.startswith("direct")}
    )

    gap = model(features, mask).member_contamination - without(features, mask).member_contamination

    expected = torch.tensor([float(b[:, -3:].mean(axis=0).sum()) for b in bags])
    assert torch.allclose(gap, expected[:, None].expand(2, 2), atol=1e-5)
