"""Fine-tuning the backbone with the heads, as seed 000's Algorithms 1 and 2 do (the encoder's
parameters are updated), after the fast head-only fit on cached features (mlloop.training.fit).

The last `finetune_stages` of the stages the model reads are trained together with the attention
and the heads; earlier stages and every BatchNorm's running statistics stay as they were (the
bags are small: a few layers of one railcar per step). Each step draws `bag_size` layers of each
railcar of a minibatch, runs them through the backbone with gradients, and minimizes the same
joint loss (mlloop.model.mil_loss). After every epoch the validation railcars are scored with
every layer; the epoch with the lowest validation MAE is kept (epoch 0 being the head-only
model).

The fine-tuned backbone is saved as a timm state dict in the storage (`models/backbone-<sha>.pt`)
and the model's config points `pretrained_weights` at that file, so that everything downstream
is unchanged: the feature key (which digests the weights file) is the fine-tuned model's own,
its features are cached under it, and scoring, live estimates and explanations build the same
backbone. A local filesystem storage is needed for that file.

torch is imported at module level: only the training worker imports this module.
"""

import copy
import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image
from torch import nn

from mlloop.artifacts import TrainedModel
from mlloop.features import FeatureExtractor
from mlloop.inclusion import dense_map, summary_tensor
from mlloop.model import mil_loss
from mlloop.training import Bag, TrainingError, evaluate, fit_error_model

Progress = Callable[[float, str], None]


@dataclass
class ImageBag:
    """One railcar for fine-tuning: its keyframes, preprocessed for the backbone (float16 to
    halve the memory), and its label."""

    layers: list[np.ndarray]  # each [3, H, W]
    contamination: float
    grade: int


def image_bags(
    extractor: FeatureExtractor,
    railcars: Sequence[tuple[Sequence[tuple[Image.Image, object]], float, int]],
) -> list[ImageBag]:
    """(keyframes with their railcar boxes, contamination, grade) per railcar -> ImageBags."""
    return [
        ImageBag(
            [extractor.preprocess(image, box).astype(np.float16) for image, box in frames],
            contamination,
            grade,
        )
        for frames, contamination, grade in railcars
    ]


def trainable_names(backbone: nn.Module, stages: Sequence[int], count: int) -> list[str]:
    """Names of the backbone parameters fine-tuning trains: those after the output of stage
    (deepest read - count), up to the deepest stage read; all up to it when count exceeds it."""
    info = backbone.feature_info
    deepest = max(stages)
    names = [name for name, _ in backbone.named_parameters()]
    end_module = info[deepest]["module"] + "."
    last = max((i for i, n in enumerate(names) if n.startswith(end_module)), default=len(names) - 1)
    first = 0
    if count <= deepest:
        start_module = info[deepest - count]["module"] + "."
        first = 1 + max(i for i, n in enumerate(names) if n.startswith(start_module))
    return names[first : last + 1]


class _Features(nn.Module):
    """Layer features as the model reads them, with gradients: pooled stages, then the inclusion
    summary when the model has an inclusion head."""

    def __init__(self, extractor: FeatureExtractor, trained: TrainedModel) -> None:
        super().__init__()
        self.backbone = extractor.backbone
        self.stages = list(trained.config.stages)
        self.config = trained.config
        self.inclusion = trained.inclusion

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        dense = self.config.dense_indices if self.inclusion is not None else ()
        indices = sorted({*self.stages, *dense})
        found = self.backbone.forward_intermediates(
            images, indices=indices, intermediates_only=True, stop_early=True
        )
        maps = dict(zip(indices, found, strict=True))
        pooled = torch.cat([maps[s].mean(dim=(2, 3)) for s in self.stages], dim=1)
        if self.inclusion is None:
            return pooled
        grid = dense_map(maps, self.config.dense_stages, self.config.dense_stage)
        return torch.cat([pooled, summary_tensor(self.inclusion, grid)], dim=1)


def _layer_features(features: _Features, layers: list[np.ndarray], device: str) -> torch.Tensor:
    """[n_layers, dim]: layers of equal shape go through the backbone together."""
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, array in enumerate(layers):
        by_shape.setdefault(array.shape, []).append(i)
    rows: list[torch.Tensor | None] = [None] * len(layers)
    for members in by_shape.values():
        batch = torch.from_numpy(np.stack([layers[i] for i in members])).float().to(device)
        for i, row in zip(members, features(batch), strict=True):
            rows[i] = row
    return torch.stack(rows)  # type: ignore[arg-type]


def _bags_now(features: _Features, bags: Sequence[ImageBag], device: str) -> list[Bag]:
    with torch.inference_mode():
        return [
            Bag(
                _layer_features(features, b.layers, device).cpu().numpy(),
                b.contamination,
                b.grade,
            )
            for b in bags
        ]


def finetune(
    trained: TrainedModel,
    extractor: FeatureExtractor,
    train: Sequence[ImageBag],
    val: Sequence[ImageBag],
    *,
    progress: Progress | None = None,
) -> tuple[TrainedModel, list[Bag]]:
    """Fine-tune `extractor`'s backbone with `trained`'s heads; the better of the head-only model
    and each epoch on validation is returned (its backbone saved, the config pointing at it),
    with the validation bags as it reads them."""
    config = trained.config
    if not train or not val:
        raise TrainingError("fine-tuning needs train and validation railcars with keyframes")
    backbone = copy.deepcopy(extractor.backbone)  # the process's cached extractor stays frozen
    tuned = copy.deepcopy(trained)
    working = FeatureExtractor.__new__(FeatureExtractor)
    working.__dict__.update(extractor.__dict__)
    working.backbone = backbone
    features = _Features(working, tuned)
    names = set(trainable_names(backbone, config.stages, config.finetune_stages))
    for name, parameter in backbone.named_parameters():
        parameter.requires_grad_(name in names)
    if tuned.inclusion is not None:
        tuned.inclusion.requires_grad_(False)
    model = tuned.model
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for n, p in backbone.named_parameters() if n in names]},
            {"params": list(model.parameters()), "lr": config.lr * 0.3},
        ],
        lr=config.finetune_lr,
        weight_decay=config.weight_decay,
    )
    rng = np.random.default_rng(config.seed)
    device = config.device
    best_bags = _bags_now(features, val, device)
    best_mae = evaluate(tuned, best_bags)["mae"]
    best = (copy.deepcopy(backbone.state_dict()), copy.deepcopy(model.state_dict()), 0)
    for epoch in range(1, config.finetune_epochs + 1):
        backbone.eval()  # frozen BatchNorm statistics; gradients still flow
        model.train()
        order = rng.permutation(len(train))
        losses = []
        for start in range(0, len(order), config.batch_size):
            chosen = [train[i] for i in order[start : start + config.batch_size]]
            rows = []
            for bag in chosen:
                keep = len(bag.layers)
                picks = np.arange(keep)
                if keep > config.bag_size:
                    picks = np.sort(rng.choice(keep, size=config.bag_size, replace=False))
                rows.append(_layer_features(features, [bag.layers[i] for i in picks], device))
            width = max(len(r) for r in rows)
            padded = torch.zeros(len(rows), width, rows[0].shape[1], device=device)
            mask = torch.zeros(len(rows), width, dtype=torch.bool, device=device)
            for i, r in enumerate(rows):
                padded[i, : len(r)] = r
                mask[i, : len(r)] = True
            target = torch.tensor([b.contamination for b in chosen], device=device)
            grades = torch.tensor([b.grade for b in chosen], dtype=torch.long, device=device)
            output = model(padded, mask)
            loss = mil_loss(output, model.standardize_target(target), grades, config.lam)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.item()))
        model.eval()
        val_bags = _bags_now(features, val, device)
        val_mae = evaluate(tuned, val_bags)["mae"]
        # Numbered after the head-only epochs, so the model page's curve runs on.
        tuned.history.append(
            {
                "epoch": config.epochs + epoch,
                "train_loss": float(np.mean(losses)),
                "val_mae": val_mae,
                "finetune": 1.0,
            }
        )
        if val_mae < best_mae:
            best_mae, best_bags = val_mae, val_bags
            best = (copy.deepcopy(backbone.state_dict()), copy.deepcopy(model.state_dict()), epoch)
        if progress is not None:
            progress(
                epoch / config.finetune_epochs,
                f"fine-tuning epoch {epoch}/{config.finetune_epochs}: train loss "
                f"{np.mean(losses):.4f}, val MAE {val_mae:.3f}",
            )
    backbone_state, head_state, epoch = best
    if epoch == 0:
        return trained, best_bags  # fine-tuning did not beat the heads alone on validation
    model.load_state_dict(head_state)
    model.eval()
    # The stages are pinned: with a weights file the automatic choice would be another one.
    tuned.config = replace(
        config,
        pretrained_weights=_save_backbone(backbone_state),
        feature_stages=tuple(config.stages),
    )
    tuned.best_epoch = trained.best_epoch
    fit_error_model(tuned, best_bags)
    return tuned, best_bags


def _save_backbone(state: dict[str, torch.Tensor]) -> str:
    """Store the fine-tuned backbone (content-addressed); its local path, for the config."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in state.items()}, buffer)
    data = buffer.getvalue()
    name = f"models/backbone-{hashlib.sha256(data).hexdigest()[:24]}.pt"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    try:
        return default_storage.path(name)
    except NotImplementedError as exc:
        raise TrainingError(
            "fine-tuning needs a local filesystem storage for the backbone's weights"
        ) from exc
