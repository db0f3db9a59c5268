"""A trained model and its saved file (the artifact): the format is written and read here only.

An artifact is a torch file of the heads' state dict (with the whitening and target buffers), the
model's settings, its feature dimension and feature key, the best epoch, and the inclusion head
learned from the masks when there is one. Its SHA-256 is
recorded on the ModelVersion and checked on every read, so an altered file is refused.

torch is imported inside the functions: the web process imports this module (through the
registry) at start and never reads an artifact.
"""

import hashlib
import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.core.files.storage import default_storage

from mlloop.config import ModelConfig, config_from_dict
from mlloop.models import ModelVersion

if TYPE_CHECKING:
    from mlloop.inclusion import InclusionHead
    from mlloop.model import MilModel

# 2: input whitening (feature_whiten) replaced per-dimension standardization.
# 3: an ensemble of heads (regressors.N, classifiers.N) and the expected-error buffers.
# 4: the dense inclusion head learned from the annotators' masks (or None), mlloop.inclusion.
ARTIFACT_FORMAT = 4


class ArtifactError(Exception):
    """A model version's artifact is missing, altered or unreadable."""


@dataclass
class TrainedModel:
    model: "MilModel"
    config: ModelConfig
    feature_key: str
    best_epoch: int = 0
    # Per epoch: {"epoch", "train_loss", "val_mae"}.
    history: list[dict[str, float]] = field(default_factory=list)
    # Learned from the masks (mlloop.inclusion); its summary is part of each layer's feature.
    inclusion: "InclusionHead | None" = None

    @property
    def grades(self) -> tuple[str, ...]:
        return self.config.grades


def artifact_bytes(trained: TrainedModel) -> bytes:
    """State dict, config, grades and feature key: everything `read_artifact` needs."""
    import torch

    buffer = io.BytesIO()
    torch.save(
        {
            "format": ARTIFACT_FORMAT,
            "state_dict": trained.model.state_dict(),
            "feature_dim": trained.model.feature_dim,
            "direct_dims": trained.model.direct_dims,
            "config": trained.config.as_dict(),
            "feature_key": trained.feature_key,
            "best_epoch": trained.best_epoch,
            "inclusion_channels": trained.inclusion.channels if trained.inclusion else None,
            "inclusion_state": trained.inclusion.state_dict() if trained.inclusion else None,
        },
        buffer,
    )
    return buffer.getvalue()


def read_artifact(model_version: ModelVersion) -> TrainedModel:
    """The trained model stored as `model_version`'s artifact, in eval mode on its configured
    device; ArtifactError if the file is missing, altered or unreadable."""
    import torch

    from mlloop.inclusion import InclusionHead
    from mlloop.model import MilModel

    label = f"model v{model_version.number}"
    if not model_version.artifact:
        raise ArtifactError(f"{label} has no artifact")
    try:
        with default_storage.open(model_version.artifact.name, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise ArtifactError(f"{label}: artifact {model_version.artifact.name} missing") from exc
    if hashlib.sha256(data).hexdigest() != model_version.artifact_sha256:
        raise ArtifactError(f"{label}: artifact does not match its recorded SHA-256 (altered)")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if payload.get("format") != ARTIFACT_FORMAT:
            raise ArtifactError(f"{label}: unknown artifact format {payload.get('format')!r}")
        config = config_from_dict(payload["config"])
        model = MilModel(
            int(payload["feature_dim"]),
            len(config.grades),
            dropout=config.dropout,
            attention_dim=config.attention_dim,
            ensemble=config.ensemble,
            # Artifacts saved before the direct term have none.
            direct_dims=int(payload.get("direct_dims", 0)),
        )
        state = payload["state_dict"]
        # Artifacts saved before the error model read the estimate's level: it adds nothing.
        state.setdefault("error_level_slope", torch.zeros(()))
        model.load_state_dict(state)
        inclusion = None
        if payload.get("inclusion_channels"):
            inclusion = InclusionHead(int(payload["inclusion_channels"]))
            inclusion.load_state_dict(payload["inclusion_state"])
            inclusion.eval()
    except ArtifactError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoding failure means the same: unusable
        raise ArtifactError(f"{label}: artifact unreadable ({exc})") from exc
    model.to(config.device).eval()
    return TrainedModel(
        model=model,
        config=config,
        feature_key=payload["feature_key"],
        best_epoch=int(payload.get("best_epoch", 0)),
        inclusion=inclusion,
    )
