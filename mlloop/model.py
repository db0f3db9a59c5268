"""The attention-MIL model with multi-task heads (seed 000, sections 3 and 5).

A railcar is a bag of layers. A timm backbone, its classifier replaced by identity, turns each
layer's keyframe into a feature vector; attention pooling (Linear-Tanh-Linear, softmax over the
bag) weighs the layers; a regression head and a classification head, each
Linear(f, 256)-ReLU-Dropout-Linear(256, k), read the pooled vector.

`MilModel` starts from precomputed features: the backbone stays frozen and its features are
cached per frame (mlloop.features), so scoring and retraining the heads never run it twice.
Fine-tuning the backbone end to end is not implemented.
"""

import pickle
from dataclasses import dataclass

import torch
from torch import nn

from mlloop.config import ModelConfig

HEAD_HIDDEN = 256


class BackboneError(Exception):
    """The backbone cannot be built as configured (unknown name, weights missing or unfit)."""


@dataclass
class MilOutput:
    contamination: torch.Tensor  # [B], in standardized units (see MilModel.target_*)
    grade_logits: torch.Tensor  # [B, C]
    attention: torch.Tensor  # [B, S], sums to 1 over each bag's real layers


def _head(feature_dim: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(feature_dim, HEAD_HIDDEN),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(HEAD_HIDDEN, out),
    )


class MilModel(nn.Module):
    """Attention pooling and the two heads, over a batch of padded bags of features.

    Features are standardized with the training set's mean and STD, and the contamination target
    too; both are buffers, so they travel in the state dict with the weights."""

    def __init__(
        self, feature_dim: int, n_grades: int, dropout: float = 0.25, attention_dim: int = 128
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.n_grades = n_grades
        self.attention = nn.Sequential(
            nn.Linear(feature_dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )
        self.regressor = _head(feature_dim, 1, dropout)
        self.classifier = _head(feature_dim, n_grades, dropout)
        # Input whitening, fitted on the training layers (`fit_input_whitening`): features are
        # centred and projected on their principal axes scaled to unit variance. Random-init
        # backbone features are highly correlated and the contamination signal sits in
        # low-variance directions, which a per-dimension standardization leaves buried.
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_whiten", torch.eye(feature_dim))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> MilOutput:
        """features [B, S, F]; mask [B, S], True for a real layer (bags shorter than S are
        padded). Every bag needs at least one real layer."""
        x = (features - self.feature_mean) @ self.feature_whiten
        scores = self.attention(x).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        pooled = torch.einsum("bs,bsf->bf", weights, x)
        return MilOutput(
            contamination=self.regressor(pooled).squeeze(-1),
            grade_logits=self.classifier(pooled),
            attention=weights,
        )

    def to_percent(self, standardized: torch.Tensor) -> torch.Tensor:
        return (standardized * self.target_std + self.target_mean).clamp(0.0, 100.0)

    def standardize_target(self, percent: torch.Tensor) -> torch.Tensor:
        return (percent - self.target_mean) / self.target_std


def mil_loss(
    output: MilOutput, target_std_units: torch.Tensor, grades: torch.Tensor, lam: float
) -> torch.Tensor:
    """L = L_reg + lambda * L_cls: MSE on the standardized contamination, cross-entropy on the
    grade. Standardizing puts L_reg on the scale of L_cls, so lambda means what it says."""
    regression = nn.functional.mse_loss(output.contamination, target_std_units)
    classification = nn.functional.cross_entropy(output.grade_logits, grades)
    return regression + lam * classification


def build_backbone(config: ModelConfig) -> nn.Module:
    """The timm backbone with its classifier replaced by identity, in eval mode.

    pretrained=False always: weights come from `config.pretrained_weights` (a local file holding
    a state dict, loaded with weights_only=True so it cannot run code) or not at all, in which
    case the initialisation is seeded so that cached features stay consistent."""
    import timm

    if not timm.is_model(config.backbone):
        raise BackboneError(f"unknown backbone {config.backbone!r} (not a timm model name)")
    torch.manual_seed(config.seed)
    backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0)
    if config.pretrained_weights:
        _load_weights(backbone, config)
    return backbone.eval().to(config.device)


def _load_weights(backbone: nn.Module, config: ModelConfig) -> None:
    path = config.pretrained_weights
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise BackboneError(f"pretrained weights file not found: {path}") from exc
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise BackboneError(f"pretrained weights file {path} cannot be read: {exc}") from exc
    if isinstance(state, dict):
        for wrapper in ("state_dict", "model"):
            if isinstance(state.get(wrapper), dict):
                state = state[wrapper]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BackboneError(f"{path} holds no state dict of tensors")
    # The checkpoint's classifier has no place in a backbone whose classifier is identity.
    classifier = getattr(backbone, "pretrained_cfg", {}).get("classifier") or ""
    state = {k: v for k, v in state.items() if not (classifier and k.startswith(classifier + "."))}
    try:
        result = backbone.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not match
        raise BackboneError(f"{path} does not fit {config.backbone}: {exc}") from exc
    if result.missing_keys or result.unexpected_keys:
        raise BackboneError(
            f"{path} does not fit {config.backbone}: "
            f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:3]}), "
            f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
        )
