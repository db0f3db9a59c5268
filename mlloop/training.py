"""Training the MIL heads: a database-free core (`fit`, `evaluate`) over bags of cached features.
mlloop.runs runs one registered model version end to end with it.

Training follows seed 000, Algorithm 2: for each minibatch, s layers are drawn uniformly from
each bag (all of them when a bag has fewer), pooled by attention, and the joint loss
L_reg + lambda * L_cls is minimized with AdamW. After every epoch the model is scored on the
validation split; the epoch with the lowest validation MAE is the one kept (model selection).
Evaluation uses every layer of a bag, with dropout off.
"""

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mlloop.artifacts import TrainedModel
from mlloop.config import ModelConfig
from mlloop.inclusion import SUMMARY_DIM, InclusionHead
from mlloop.model import MilModel, mil_loss

# progress(fraction 0-1, message) while fitting.
Progress = Callable[[float, str], None]


class TrainingError(Exception):
    """Training cannot proceed for a reason the user must fix (empty split, no features...)."""


@dataclass
class Bag:
    """One railcar: a feature vector per layer, and its label (grade as an index into the
    config's grades)."""

    features: np.ndarray  # [n_layers, dim] float32
    contamination: float
    grade: int
    railcar_id: int | None = None


def collate(
    bags: Sequence[np.ndarray], bag_size: int | None, rng: np.random.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad bags into [B, S, F] with a mask. With `bag_size`, each bag keeps that many layers
    drawn uniformly without replacement (all of them if it has fewer); without, all layers."""
    chosen = []
    for features in bags:
        if bag_size is not None and len(features) > bag_size:
            features = features[np.sort(rng.choice(len(features), size=bag_size, replace=False))]
        chosen.append(features)
    width = max(len(f) for f in chosen)
    dim = chosen[0].shape[1]
    batch = np.zeros((len(chosen), width, dim), dtype=np.float32)
    mask = np.zeros((len(chosen), width), dtype=bool)
    for i, features in enumerate(chosen):
        batch[i, : len(features)] = features
        mask[i, : len(features)] = True
    return torch.from_numpy(batch), torch.from_numpy(mask)


def _check_bags(bags: Sequence[Bag], split: str, n_grades: int) -> None:
    if not bags:
        raise TrainingError(f"the {split} split has no railcars with usable frames")
    dims = {b.features.shape[1] for b in bags if b.features.ndim == 2}
    if len(dims) != 1 or any(b.features.ndim != 2 or len(b.features) == 0 for b in bags):
        raise TrainingError(f"the {split} split has bags without layers or of mixed dimensions")
    bad = [b for b in bags if not 0 <= b.grade < n_grades or not math.isfinite(b.contamination)]
    if bad:
        raise TrainingError(f"the {split} split has {len(bad)} railcars with an invalid label")


# Directions with less variance than this share of the largest are numerically empty in the
# training layers (fewer layers than dimensions): they are dropped, not blown up.
WHITEN_KEEP = 1e-6
# Added to every kept eigenvalue, as a share of their mean: a light shrinkage.
WHITEN_SHRINK = 0.01


def input_whitening(layers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, W) such that (x - mean) @ W has unit variance along the training layers'
    principal axes. Measured on the synthetic railcars with random-init features (100 labeled
    railcars): contamination MAE 0.77x predict-the-mean with it, 0.99x with per-dimension
    standardization."""
    data = layers.astype(np.float64)
    mean = data.mean(axis=0)
    if len(data) < 2:
        return mean.astype(np.float32), np.eye(data.shape[1], dtype=np.float32)
    eigenvalues, vectors = np.linalg.eigh(np.cov(data - mean, rowvar=False))
    top = float(eigenvalues.max())
    if not top > 0:
        return mean.astype(np.float32), np.eye(data.shape[1], dtype=np.float32)
    keep = eigenvalues > WHITEN_KEEP * top
    shrink = WHITEN_SHRINK * float(eigenvalues[keep].mean())
    whiten = np.zeros_like(vectors)
    whiten[:, keep] = vectors[:, keep] / np.sqrt(eigenvalues[keep] + shrink)
    return mean.astype(np.float32), whiten.astype(np.float32)


def fit(
    train_bags: Sequence[Bag],
    val_bags: Sequence[Bag],
    config: ModelConfig,
    *,
    feature_key: str = "",
    progress: Progress | None = None,
    inclusion: InclusionHead | None = None,
    least_squares_start: bool = True,
) -> TrainedModel:
    """Train the heads on `train_bags`, keep the epoch best on `val_bags`. `inclusion` is the
    head whose summaries the bags already carry (mlloop.feature_maps.model_bags); it is stored
    with the model so that scoring builds the same bags, and the summary's direct lines start
    at their least-squares fit (`fit_direct_lines`; False, only for the bench's ablation: from a
    random start)."""
    n_grades = len(config.grades)
    _check_bags(train_bags, "train", n_grades)
    _check_bags(val_bags, "val", n_grades)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    dim = train_bags[0].features.shape[1]
    if val_bags[0].features.shape[1] != dim:
        raise TrainingError("train and val features differ in dimension")

    model = MilModel(
        dim,
        n_grades,
        dropout=config.dropout,
        attention_dim=config.attention_dim,
        ensemble=config.ensemble,
        direct_dims=SUMMARY_DIM if inclusion is not None else 0,
    )
    # Each member of the ensemble trains on its own bootstrap resample: Poisson(1) counts per
    # railcar (Lakshminarayanan et al. 2017 found random initialisation alone enough for large
    # networks; with a few hundred railcars the resampling is what makes the members disagree
    # where the data are thin).
    counts = rng.poisson(1.0, size=(len(train_bags), config.ensemble)).astype(np.float32)
    layers = np.concatenate([b.features for b in train_bags])
    targets = np.asarray([b.contamination for b in train_bags], dtype=np.float32)
    with torch.no_grad():
        mean, whiten = input_whitening(layers)
        model.feature_mean.copy_(torch.from_numpy(mean))
        model.feature_whiten.copy_(torch.from_numpy(whiten))
        if model.direct_dims:
            direct = layers[:, -model.direct_dims :].astype(np.float64)
            model.direct_mean.copy_(torch.from_numpy(direct.mean(axis=0)))
            model.direct_std.copy_(torch.from_numpy(direct.std(axis=0) + 1e-6))
        model.target_mean.fill_(float(targets.mean()))
        model.target_std.fill_(float(targets.std()) or 1.0)
        start_at_lines = bool(model.direct_dims) and least_squares_start
        if start_at_lines:
            fit_direct_lines(model, train_bags, counts)
    model.to(config.device)
    lines = [p for line in getattr(model, "direct", []) for p in line.parameters()]
    others = [p for p in model.parameters() if all(p is not q for q in lines)]
    # The lines start at their least-squares fit: weight decay would only pull them off it.
    optimizer = torch.optim.AdamW(
        [{"params": others}, {"params": lines, "weight_decay": 0.0}],
        lr=config.lr,
        weight_decay=config.weight_decay,
    )

    trained = TrainedModel(model=model, config=config, feature_key=feature_key, inclusion=inclusion)
    best_mae, best_state = math.inf, None
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = rng.permutation(len(train_bags))
        losses = []
        for start in range(0, len(order), config.batch_size):
            chosen = order[start : start + config.batch_size]
            batch = [train_bags[i] for i in chosen]
            features, mask = collate([b.features for b in batch], config.bag_size, rng)
            target = torch.tensor([b.contamination for b in batch], dtype=torch.float32)
            grades = torch.tensor([b.grade for b in batch], dtype=torch.long)
            output = model(features.to(config.device), mask.to(config.device))
            loss = mil_loss(
                output,
                model.standardize_target(target.to(config.device)),
                grades.to(config.device),
                config.lam,
                weights=torch.from_numpy(counts[chosen]).to(config.device),
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        val_mae = evaluate(trained, val_bags)["mae"]
        trained.history.append(
            {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_mae": val_mae}
        )
        if val_mae < best_mae:
            best_mae, best_state = val_mae, copy.deepcopy(model.state_dict())
            trained.best_epoch = epoch
        if progress is not None:
            progress(
                epoch / config.epochs,
                f"epoch {epoch}/{config.epochs}: train loss {np.mean(losses):.4f}, "
                f"val MAE {val_mae:.3f}",
            )
    model.load_state_dict(best_state)
    model.eval()
    fit_error_model(trained, val_bags)
    return trained


# Ridge penalty of the lines' least-squares fit, per railcar (the summary is standardized).
LINE_RIDGE = 1e-3


def fit_direct_lines(model: MilModel, bags: Sequence[Bag], counts: np.ndarray) -> None:
    """Each regression member's direct line at its weighted least-squares fit on the bags (its
    own bootstrap counts), and its MLP's last layer at zero: a member starts as the line, the
    model a few dozen labels can fit, and training adds what the pooled features explain beyond
    it. Measured on the bench's railcars after 180 random labels (issue 10), the line alone on
    the inclusion summary reached 0.35-0.43x the MAE of the mean on 3 seeds, the heads trained
    from a random start with the line 0.51-0.74x."""
    direct = model.direct_dims
    x = np.stack([b.features[:, -direct:].mean(axis=0) for b in bags]).astype(np.float64)
    x = (x - model.direct_mean.numpy()) / model.direct_std.numpy()
    y = (np.asarray([b.contamination for b in bags]) - float(model.target_mean)) / float(
        model.target_std
    )
    design = np.concatenate([x, np.ones((len(bags), 1))], axis=1)
    penalty = LINE_RIDGE * len(bags) * np.diag([1.0] * direct + [0.0])
    for member, (line, head) in enumerate(zip(model.direct, model.regressors, strict=True)):
        w = counts[:, member].astype(np.float64)
        # lstsq, not solve: a member whose resample drew no railcar (likely with a handful of
        # them) has a singular system; its minimum-norm line is 0, the training mean.
        solution = np.linalg.lstsq(
            design.T @ (design * w[:, None]) + penalty, design.T @ (w * y), rcond=None
        )[0]
        line.weight.copy_(torch.from_numpy(solution[:direct]).float()[None])
        line.bias.fill_(float(solution[direct]))
        head[-1].weight.zero_()
        head[-1].bias.zero_()


def fit_error_model(trained: TrainedModel, bags: Sequence[Bag]) -> None:
    """Fit the expected |error| (pp) on held-out railcars in two steps. First a + b * spread by
    least squares: the members' spread, what labels can teach (with a slope that is not
    positive, the spread stays a ranking on its own scale). Then the residual against the
    estimate's level, + c * estimate with c >= 0: errors grow with the contamination (mostly
    raters' noise). The whole expected error is what the pool order, the expected error shown
    and the live confidence read. The labels are raters' consensus, so `a` also absorbs their
    noise."""
    contamination, spread, _, _ = ensemble_predictions(trained, bags)
    error = np.abs(contamination - np.asarray([b.contamination for b in bags]))
    slope, intercept, level = 1.0, 0.0, 0.0
    if len(bags) >= 3 and float(spread.std()) > 0:
        slope, intercept = np.polyfit(spread, error, 1)
        if slope <= 0:  # the spread says nothing here: keep it as a ranking, on its own scale
            slope, intercept = 1.0, float(max(error.mean() - spread.mean(), 0.0))
    if len(bags) >= 3 and float(contamination.std()) > 0:
        residual = error - (intercept + slope * spread)
        level, shift = np.polyfit(contamination, residual, 1)
        if level > 0:
            intercept += shift
        else:
            level = 0.0
    model = trained.model
    with torch.no_grad():
        model.error_slope.fill_(float(slope))
        model.error_intercept.fill_(float(max(intercept, 0.0)))
        model.error_level_slope.fill_(float(level))


@dataclass(frozen=True)
class EnsembleOutput:
    """Per bag (every layer, dropout off)."""

    contamination: np.ndarray  # [n] the members' mean contamination (%)
    spread: np.ndarray  # [n] their STD (pp)
    grade_probs: np.ndarray  # [n, C] the members' mean grade probabilities
    pooled: np.ndarray  # [n, F] the attention-pooled, whitened bag (the railcar's embedding)
    attention: list[np.ndarray]  # per bag, its layers' attention weights (sum to 1)


def ensemble_outputs(
    trained: TrainedModel, bags: Sequence[Bag] | Sequence[np.ndarray]
) -> EnsembleOutput:
    model = trained.model
    model.eval()
    means, spreads, probs, pooled, attention = [], [], [], [], []
    with torch.inference_mode():
        for start in range(0, len(bags), 64):
            part = [b.features if isinstance(b, Bag) else b for b in bags[start : start + 64]]
            features, mask = collate(part, None, None)
            output = model(features.to(trained.config.device), mask.to(trained.config.device))
            members = model.to_percent(output.member_contamination)
            means.append(members.mean(dim=1).cpu().numpy())
            spreads.append(members.std(dim=1, unbiased=False).cpu().numpy())
            probs.append(torch.softmax(output.member_grade_logits, dim=2).mean(dim=1).cpu().numpy())
            pooled.append(output.pooled.cpu().numpy())
            weights = output.attention.cpu().numpy()
            attention += [weights[i, : len(bag)] for i, bag in enumerate(part)]
    return EnsembleOutput(
        contamination=np.concatenate(means),
        spread=np.concatenate(spreads),
        grade_probs=np.concatenate(probs),
        pooled=np.concatenate(pooled),
        attention=attention,
    )


def ensemble_predictions(
    trained: TrainedModel, bags: Sequence[Bag] | Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per bag (every layer, dropout off): the members' mean contamination (%), their spread
    (STD, pp), the members' mean grade probabilities [n, C] and the attention-pooled, whitened
    bag [n, F] (the railcar's embedding)."""
    out = ensemble_outputs(trained, bags)
    return out.contamination, out.spread, out.grade_probs, out.pooled


def point_predictions(trained: TrainedModel, bags: Sequence[Bag]) -> tuple[np.ndarray, np.ndarray]:
    """Contamination (%) and grade index per bag: the ensemble's mean, every layer, dropout
    off."""
    contamination, _, probs, _ = ensemble_predictions(trained, bags)
    return contamination, probs.argmax(axis=1)


def evaluate(trained: TrainedModel, bags: Sequence[Bag]) -> dict[str, Any]:
    if not bags:
        return {"n": 0}
    contamination, grades = point_predictions(trained, bags)
    return metrics(
        np.asarray([b.contamination for b in bags]),
        contamination,
        np.asarray([b.grade for b in bags]),
        grades,
        trained.grades,
    )


def metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    g_true: np.ndarray,
    g_pred: np.ndarray,
    grades: Sequence[str],
) -> dict[str, Any]:
    """MAE and R2 of the contamination; accuracy, macro precision/recall/F1 and the confusion
    matrix of the grade. Macro averages run over the grades present in the truth or the
    predictions (as scikit-learn does); an undefined precision or recall counts as 0. R2 is
    None when the truth has no variance."""
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    residual = float(((y_true - y_pred) ** 2).sum())
    total = float(((y_true - y_true.mean()) ** 2).sum())
    n = len(grades)
    confusion = np.zeros((n, n), dtype=int)
    np.add.at(confusion, (np.asarray(g_true, dtype=int), np.asarray(g_pred, dtype=int)), 1)
    per_class = {}
    present = [i for i in range(n) if confusion[i, :].sum() or confusion[:, i].sum()]
    for i in present:
        tp = confusion[i, i]
        predicted, actual = confusion[:, i].sum(), confusion[i, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[grades[i]] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(actual),
        }
    return {
        "n": len(y_true),
        "mae": float(np.abs(y_true - y_pred).mean()),
        "r2": 1 - residual / total if total > 0 else None,
        "accuracy": float(np.trace(confusion) / confusion.sum()),
        "precision_macro": float(np.mean([c["precision"] for c in per_class.values()])),
        "recall_macro": float(np.mean([c["recall"] for c in per_class.values()])),
        "f1_macro": float(np.mean([c["f1"] for c in per_class.values()])),
        "per_class": per_class,
        "confusion": {"grades": list(grades), "matrix": confusion.tolist()},
    }
