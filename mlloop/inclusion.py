"""The annotators' masks as supervision: a dense inclusion head over the backbone's feature map.

Annotators mark non-metallic inclusions pixel by pixel on the keyframes. Each keyframe's masks,
averaged over the raters who drew on the railcar, give a soft coverage target for every cell of
the dense map (`dense_map`: stages 0-2 of the backbone on the stride-8 grid of stage 2; the share
of the cell's pixels marked). A small per-cell MLP learns it (binary cross-entropy on the soft
targets, as in dense prediction from weak, averaged masks). Its output, summarised per layer
(mean predicted coverage, share of cells above one half, 90th percentile), is appended to the
layer's pooled feature, so that the attention-MIL heads read an estimate of the very quantity
the contamination is defined by (inclusion pixels over scrap pixels).

Why: measured on the synthetic railcars (issue 10), the visible inclusion share the masks mark
predicts the contamination almost exactly (the annotators' masks averaged: R2 0.96 on held-out
railcars); the pooled frozen features average the inclusions away. The head's grid decides how
much of that survives: on stage 3 alone (stride 16) its mean coverage reached R2 0.36 on held-out
railcars, on the stride-8 hypercolumn of stages 0-2 0.88 (ModelConfig.dense_stages).

torch is imported at module level: only workers and the benchmark import this module.
"""

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn

HIDDEN = 64
SUMMARY_DIM = 3
# Cells drawn per fit: the head is tiny and the cells of one keyframe are highly correlated, so a
# sample keeps fitting fast on a CPU (a few seconds) at no measured loss.
MAX_CELLS = 60_000
EPOCHS = 12
BATCH = 512
# The summary is scaled into the range of whitened features (coverage is a few per cent).
SUMMARY_SCALE = 10.0


class InclusionHead(nn.Module):
    """Per-cell inclusion coverage from a feature map's channels: standardize, Linear-ReLU-
    Linear, a logit per cell."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.mlp = nn.Sequential(nn.Linear(channels, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 1))
        self.register_buffer("cell_mean", torch.zeros(channels))
        self.register_buffer("cell_std", torch.ones(channels))

    def forward(self, cells: torch.Tensor) -> torch.Tensor:
        """cells [..., C] -> coverage logits [...]."""
        return self.mlp((cells - self.cell_mean) / self.cell_std).squeeze(-1)

    def coverage(self, feature_map: np.ndarray) -> np.ndarray:
        """[h, w, C] -> predicted coverage [h, w] in 0-1."""
        with torch.inference_mode():
            logits = self(torch.from_numpy(np.ascontiguousarray(feature_map)).float())
        return torch.sigmoid(logits).numpy()


def dense_map(maps: Mapping[int, torch.Tensor], stages: Sequence[int], grid: int) -> torch.Tensor:
    """The maps [B, C_s, h_s, w_s] of `stages` on the grid of stage `grid`, concatenated along
    channels: a hypercolumn (Hariharan et al., "Hypercolumns for object segmentation and
    fine-grained localization", CVPR 2015). Finer maps are averaged over each cell, coarser ones
    bilinearly upsampled: an inclusion a few pixels wide keeps the early stages' colour and edge
    channels, and the late stages add what the piece is."""
    height, width = maps[grid].shape[2:]
    parts = []
    for stage in stages:
        found = maps[stage]
        if tuple(found.shape[2:]) == (height, width):
            parts.append(found)
        elif found.shape[2] >= height:
            parts.append(nn.functional.adaptive_avg_pool2d(found, (height, width)))
        else:
            parts.append(
                nn.functional.interpolate(
                    found, size=(height, width), mode="bilinear", align_corners=False
                )
            )
    return torch.cat(parts, dim=1)


def summary_tensor(head: InclusionHead, feature_maps: torch.Tensor) -> torch.Tensor:
    """Layers' inclusion summaries [B, SUMMARY_DIM] from feature maps [B, C, h, w]: mean
    predicted coverage, share of cells above 0.5, 90th percentile, scaled by SUMMARY_SCALE.
    Differentiable in the maps (but for the share), so Grad-CAM can look through it."""
    cover = torch.sigmoid(head(feature_maps.flatten(2).transpose(1, 2)))  # [B, h*w]
    values = [cover.mean(dim=1), (cover > 0.5).float().mean(dim=1)]
    values.append(torch.quantile(cover, 0.9, dim=1))
    return SUMMARY_SCALE * torch.stack(values, dim=1)


def summary(head: InclusionHead, feature_map: np.ndarray) -> np.ndarray:
    """One layer's summary (see `summary_tensor`) from its feature map [h, w, C]."""
    with torch.inference_mode():
        fmap = torch.from_numpy(np.ascontiguousarray(feature_map)).float()
        return summary_tensor(head, fmap.permute(2, 0, 1)[None])[0].numpy()


def cell_targets(coverage: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A pixel coverage map (0-1, the crop the backbone saw) averaged into `grid` (h, w) cells."""
    height, width = grid
    image = Image.fromarray(coverage.astype(np.float32), mode="F")
    return np.asarray(image.resize((width, height), Image.Resampling.BOX), dtype=np.float32)


def fit_inclusion_head(
    maps: Sequence[np.ndarray], targets: Sequence[np.ndarray], *, seed: int = 0
) -> InclusionHead:
    """Fit the head on feature maps [h, w, C] and their cell targets [h, w] (0-1)."""
    if not maps or len(maps) != len(targets):
        raise ValueError("need one target grid per feature map, and at least one")
    sizes = [m.shape[0] * m.shape[1] for m in maps]
    if any(t.size != n for t, n in zip(targets, sizes, strict=True)):
        raise ValueError("feature maps and targets differ in size")
    rng = np.random.default_rng(seed)
    # The sample is drawn before anything is copied: the hypercolumns of a few hundred keyframes
    # hold tens of millions of values, of which MAX_CELLS are used.
    total = sum(sizes)
    chosen = np.sort(rng.choice(total, size=min(total, MAX_CELLS), replace=False))
    starts = np.cumsum([0, *sizes])
    which = np.searchsorted(starts, chosen, side="right") - 1
    cells = np.empty((len(chosen), maps[0].shape[-1]), np.float32)
    cover = np.empty(len(chosen), np.float32)
    for k in np.unique(which):
        rows = np.flatnonzero(which == k)
        local = chosen[rows] - starts[k]
        cells[rows] = maps[k].reshape(-1, maps[k].shape[-1])[local]
        cover[rows] = targets[k].reshape(-1)[local]
    torch.manual_seed(seed)
    head = InclusionHead(cells.shape[1])
    with torch.no_grad():
        head.cell_mean.copy_(torch.from_numpy(cells.mean(axis=0)))
        head.cell_std.copy_(torch.from_numpy(cells.std(axis=0) + 1e-6))
    x, y = torch.from_numpy(cells), torch.from_numpy(np.clip(cover, 0.0, 1.0))
    optimizer = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    head.train()
    for _ in range(EPOCHS):
        order = torch.from_numpy(rng.permutation(len(x)))
        for start in range(0, len(x), BATCH):
            batch = order[start : start + BATCH]
            loss = nn.functional.binary_cross_entropy_with_logits(head(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return head.eval()
