"""The attention-MIL model with multi-task heads (seed 000, sections 3 and 5).

A railcar is a bag of layers. A timm backbone, its classifier replaced by identity, turns each
layer's keyframe into a feature vector; attention pooling (Linear-Tanh-Linear, softmax over the
bag) weighs the layers; a regression head and a classification head, each
Linear(f, 256)-ReLU-Dropout-Linear(256, k), read the pooled vector.

`MilModel` starts from precomputed features: the backbone stays frozen and its features are
cached per frame (mlloop.features), so scoring and retraining the heads never run it twice.
Fine-tuning the backbone end to end is not implemented. The heads are a small deep ensemble whose
spread is the uncertainty (see MilModel).
"""

from dataclasses import dataclass

import torch
from django.core.exceptions import ValidationError
from torch import nn

from mlloop.config import ModelConfig, weights_path
from mlloop.pretrained import BackboneError, load_weights, read_state_dict

HEAD_HIDDEN = 256


@dataclass
class MilOutput:
    contamination: torch.Tensor  # [B], standardized units (see MilModel.target_*): members' mean
    grade_logits: torch.Tensor  # [B, C], the members' mean logits
    attention: torch.Tensor  # [B, S], sums to 1 over each bag's real layers
    member_contamination: torch.Tensor  # [B, K], standardized, one per ensemble member
    member_grade_logits: torch.Tensor  # [B, K, C]
    pooled: torch.Tensor  # [B, F], the attention-pooled (whitened) bag: the railcar's embedding


def _head(feature_dim: int, out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(feature_dim, HEAD_HIDDEN),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(HEAD_HIDDEN, out),
    )


class MilModel(nn.Module):
    """Attention pooling and the two heads, over a batch of padded bags of features.

    The heads are a small deep ensemble (Lakshminarayanan et al., "Simple and Scalable
    Predictive Uncertainty Estimation using Deep Ensembles", NeurIPS 2017): `ensemble` pairs of
    regression and classification heads, each initialised apart and trained on its own
    bootstrap resample of the railcars (training.fit). Their mean is the estimate, their spread
    what the model does not know. `error_intercept + error_slope * spread + error_level_slope *
    estimate` (fitted on validation railcars in two steps, training.fit_error_model) is the
    expected absolute error in percentage points: errors grow with the contamination itself (a
    railcar at 12 % is misjudged by more points than one at 2 %), which ranks them far better
    than the spread alone (Spearman with the error 0.40 against 0.05 on the bench's data).

    Features are whitened with the training layers' statistics, and the contamination target
    standardized; both are buffers, so they travel in the state dict with the weights.

    `direct_dims`: the last this many feature dimensions (the inclusion head's per-layer summary,
    mlloop.inclusion) also reach each regression member through a linear term on their mean over
    the bag's layers, standardized but not whitened. The contamination is by definition about
    the inclusion share the summary estimates, so a straight line on it is the model a few dozen
    labels can fit; the whitening spreads those three dimensions over every principal axis of
    the pooled features, where the heads' MLP has to find them again. Measured on the bench's
    railcars after 180 labels (issue 10): without the term the hypercolumn head's summary took
    the model to 0.64x the MAE of the mean on seed 0, with it 0.47x; over 3 seeds at random
    picks 0.69x and 0.62x. Each member's line starts at its least-squares fit and its MLP at
    zero (training.fit_direct_lines): 0.33-0.39x on the same 3 seeds (README, the ablation)."""

    def __init__(
        self,
        feature_dim: int,
        n_grades: int,
        dropout: float = 0.25,
        attention_dim: int = 128,
        ensemble: int = 1,
        direct_dims: int = 0,
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.n_grades = n_grades
        self.ensemble = ensemble
        self.direct_dims = direct_dims
        self.attention = nn.Sequential(
            nn.Linear(feature_dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )
        self.regressors = nn.ModuleList(_head(feature_dim, 1, dropout) for _ in range(ensemble))
        self.classifiers = nn.ModuleList(
            _head(feature_dim, n_grades, dropout) for _ in range(ensemble)
        )
        # Input whitening, fitted on the training layers (`fit_input_whitening`): features are
        # centred and projected on their principal axes scaled to unit variance. Random-init
        # backbone features are highly correlated and the contamination signal sits in
        # low-variance directions, which a per-dimension standardization leaves buried.
        self.register_buffer("feature_mean", torch.zeros(feature_dim))
        self.register_buffer("feature_whiten", torch.eye(feature_dim))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))
        # Expected absolute error (pp) = intercept + slope * members' spread (pp).
        self.register_buffer("error_intercept", torch.zeros(()))
        self.register_buffer("error_slope", torch.ones(()))
        self.register_buffer("error_level_slope", torch.zeros(()))
        if direct_dims:
            self.direct = nn.ModuleList(nn.Linear(direct_dims, 1) for _ in range(ensemble))
            self.register_buffer("direct_mean", torch.zeros(direct_dims))
            self.register_buffer("direct_std", torch.ones(direct_dims))

    def forward(self, features: torch.Tensor, mask: torch.Tensor | None = None) -> MilOutput:
        """features [B, S, F]; mask [B, S], True for a real layer (bags shorter than S are
        padded). Every bag needs at least one real layer."""
        x = (features - self.feature_mean) @ self.feature_whiten
        scores = self.attention(x).squeeze(-1)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        pooled = torch.einsum("bs,bsf->bf", weights, x)
        members = torch.cat([head(pooled) for head in self.regressors], dim=1)
        if self.direct_dims:
            raw = (features[..., -self.direct_dims :] - self.direct_mean) / self.direct_std
            real = torch.ones_like(scores) if mask is None else mask.to(raw.dtype)
            mean = torch.einsum("bs,bsd->bd", real / real.sum(dim=1, keepdim=True), raw)
            members = members + torch.cat([line(mean) for line in self.direct], dim=1)
        logits = torch.stack([head(pooled) for head in self.classifiers], dim=1)
        return MilOutput(
            contamination=members.mean(dim=1),
            grade_logits=logits.mean(dim=1),
            attention=weights,
            member_contamination=members,
            member_grade_logits=logits,
            pooled=pooled,
        )

    def to_percent(self, standardized: torch.Tensor) -> torch.Tensor:
        return (standardized * self.target_std + self.target_mean).clamp(0.0, 100.0)

    def standardize_target(self, percent: torch.Tensor) -> torch.Tensor:
        return (percent - self.target_mean) / self.target_std

    def expected_error(
        self, spread_pct: torch.Tensor, contamination_pct: torch.Tensor
    ) -> torch.Tensor:
        return (
            self.error_intercept
            + self.error_slope * spread_pct
            + self.error_level_slope * contamination_pct
        ).clamp(min=0.0)


def mil_loss(
    output: MilOutput,
    target_std_units: torch.Tensor,
    grades: torch.Tensor,
    lam: float,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """L = L_reg + lambda * L_cls for every ensemble member: MSE on the standardized
    contamination, cross-entropy on the grade. Standardizing puts L_reg on the scale of L_cls,
    so lambda means what it says. `weights` [B, K] are the members' bootstrap counts (each
    member sees its own resample of the railcars); None weighs every bag 1 for every member."""
    members = output.member_contamination
    if weights is None:
        weights = torch.ones_like(members)
    regression = (members - target_std_units[:, None]) ** 2
    batch, k, n_grades = output.member_grade_logits.shape
    classification = nn.functional.cross_entropy(
        output.member_grade_logits.reshape(batch * k, n_grades),
        grades.repeat_interleave(k),
        reduction="none",
    ).reshape(batch, k)
    total = weights.sum().clamp(min=1.0)
    return ((regression + lam * classification) * weights).sum() / total


def build_backbone(config: ModelConfig) -> nn.Module:
    """The timm backbone with its classifier replaced by identity, in eval mode.

    pretrained=False always: weights come from `weights_path(config)` (a local file or a
    package's, loaded with weights_only=True so it cannot run code) or not at all, in which case
    the initialisation is seeded so that cached features stay consistent."""
    import timm

    if not timm.is_model(config.backbone):
        raise BackboneError(f"unknown backbone {config.backbone!r} (not a timm model name)")
    torch.manual_seed(config.seed)
    backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0)
    try:
        path = weights_path(config)
    except ValidationError as exc:
        raise BackboneError(str(exc.message)) from exc
    if path is not None:
        load_weights(backbone, read_state_dict(path), source=str(path), name=config.backbone)
    return backbone.eval().to(config.device)
