"""Grad-CAM heatmaps over a railcar's keyframes (seed 000, section 4 and Figure 3), with the
`grad-cam` package (pytorch-grad-cam), for the production model's contamination output.

The production model is a frozen timm backbone (mlloop.features) under an attention-MIL head
(mlloop.model). `CamModel` joins them: one keyframe goes in as a one-layer bag, and the output is
the ensemble's mean contamination regression (standardized units; Grad-CAM needs only its
gradient). The target layer is the deepest backbone stage the model actually reads: the features
are the pooled maps of `config.stages` (often not the last stage of the backbone, which the model
never sees and whose gradient would be zero), or the final feature map when the config pools
the backbone's own output. An identity module on that map is where Grad-CAM's hooks attach, so
the shared, cached backbone is never hooked.

A heatmap is cached per (railcar, model version, layer) in `Explanation`, its PNG content-
addressed in the default storage like the thumbnails (labeling/thumbnails.py). It is computed
on a worker (task `operations.compute_explanation`, queue "explanations"); torch is imported
inside the functions that need it, so that the web process does not load it.
"""

import hashlib
import io
import threading
from typing import TYPE_CHECKING

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from PIL import Image

from labeling.models import Frame, Layer, Railcar
from mlloop import registry
from mlloop.models import ModelVersion
from operations.models import Explanation
from scrapannot.enqueue import enqueue

if TYPE_CHECKING:
    import torch

    from mlloop.artifacts import TrainedModel
    from mlloop.features import FeatureExtractor


# operations.report_tasks.compute_explanation, enqueued by name (the task module imports this one).
COMPUTE_TASK = "operations.compute_explanation"


class NotExplainable(Exception):
    """No production model, no such layer, or a layer without an eligible keyframe."""


_CAM_LOCK = threading.Lock()


def keyframe_of(*, railcar: Railcar, layer_index: int) -> Frame:
    layer = (
        Layer.objects.select_related("keyframe").filter(railcar=railcar, index=layer_index).first()
    )
    frame = layer.keyframe if layer else None
    if frame is None or frame.rejection or frame.quality != Frame.Quality.ELIGIBLE:
        raise NotExplainable(f"layer {layer_index} has no eligible keyframe")
    return frame


def explainable(*, railcar: Railcar, layer_index: int) -> ModelVersion:
    """The model an explanation would be computed with; NotExplainable if there is none."""
    model_version = registry.production()
    if model_version is None:
        raise NotExplainable("no production model")
    keyframe_of(railcar=railcar, layer_index=layer_index)
    return model_version


def cached(
    *, railcar: Railcar, layer_index: int, model_version: ModelVersion
) -> Explanation | None:
    return Explanation.objects.filter(
        railcar=railcar, model_version=model_version, layer_index=layer_index
    ).first()


def png_bytes(explanation: Explanation) -> bytes:
    with default_storage.open(explanation.file.name, "rb") as handle:
        return handle.read()


def _cam_model(trained: "TrainedModel", features: "FeatureExtractor") -> "torch.nn.Module":
    from torch import nn

    from mlloop.inclusion import dense_map, summary_tensor

    class CamModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = features.backbone
            self.mil = trained.model
            self.target = nn.Identity()  # Grad-CAM's hooks go here

        def forward(self, image: "torch.Tensor") -> "torch.Tensor":
            import torch

            inclusion = trained.inclusion
            config = trained.config
            dense = config.dense_indices if inclusion is not None else ()
            maps: dict[int, torch.Tensor] = {}
            if features.stages:
                indices = sorted({*features.stages, *dense})
                found = self.backbone.forward_intermediates(
                    image, indices=indices, intermediates_only=True, stop_early=True
                )
                maps = dict(zip(indices, found, strict=True))
                maps[indices[-1]] = self.target(maps[indices[-1]])  # the deepest stage read
                feature = torch.cat([maps[s].mean(dim=(2, 3)) for s in features.stages], dim=1)
            else:
                stage = self.target(self.backbone.forward_features(image))
                feature = self.backbone.forward_head(stage, pre_logits=True)
                if inclusion is not None:
                    found = self.backbone.forward_intermediates(
                        image, indices=list(dense), intermediates_only=True, stop_early=True
                    )
                    maps = dict(zip(dense, found, strict=True))
            if inclusion is not None:
                # The masks' inclusion head reads the dense map: its summary is part of the
                # layer's feature (mlloop.feature_maps.model_bags), so the heat sees it too.
                grid = dense_map(maps, config.dense_stages, config.dense_stage)
                feature = torch.cat([feature, summary_tensor(inclusion, grid)], dim=1)
            return self.mil(feature[:, None, :]).contamination[:, None]  # [1, 1]

    return CamModel().eval()


def keyframe_heat(*, trained: "TrainedModel", frame: Frame) -> tuple[Image.Image, np.ndarray]:
    """The keyframe (RGB) and the Grad-CAM of the contamination output on it, [height, width]
    in 0-1, zero outside the railcar crop the model saw."""
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from mlloop.features import crop_box, extractor, load_image

    features = extractor(trained.config)
    image = load_image(frame).convert("RGB")
    tensor = torch.from_numpy(features.preprocess(image, frame.railcar_box))[None]
    tensor = tensor.to(trained.config.device)
    # The backbone and heads are the process's shared, cached ones: two Grad-CAMs at once in
    # one process (threads: the demo's background runner, eager tasks in a threaded server)
    # would accumulate into and clear the same parameters' gradients under each other, which
    # crashed the interpreter once (a segmentation fault in zero_grad). One at a time.
    with _CAM_LOCK:
        model = _cam_model(trained, features)
        try:
            with torch.enable_grad(), GradCAM(model=model, target_layers=[model.target]) as cam:
                heat = cam(input_tensor=tensor, targets=[ClassifierOutputTarget(0)])[0]
        finally:
            # Scoring uses the same modules: leave no gradients behind on them.
            model.zero_grad(set_to_none=True)
    box = None
    if trained.config.crop_to_railcar and frame.railcar_box is not None:
        box = crop_box(frame.railcar_box, image.width, image.height)
    x0, y0, x1, y1 = box or (0, 0, image.width, image.height)
    full = np.zeros((image.height, image.width), dtype=np.float32)
    resized = Image.fromarray(heat.astype(np.float32), mode="F").resize(
        (x1 - x0, y1 - y0), Image.Resampling.BILINEAR
    )
    full[y0:y1, x0:x1] = np.clip(np.asarray(resized), 0.0, 1.0)
    return image, full


def heatmap_png(*, trained: "TrainedModel", frame: Frame) -> tuple[bytes, int, int]:
    """The heat blended over the whole keyframe (JET colormap): PNG bytes, width, height."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    image, heat = keyframe_heat(trained=trained, frame=frame)
    rgb = np.asarray(image, dtype=np.float32) / 255.0
    overlay = show_cam_on_image(rgb, heat, use_rgb=True, image_weight=0.55)
    out = io.BytesIO()
    Image.fromarray(overlay).save(out, format="PNG", optimize=True)
    return out.getvalue(), image.width, image.height


def compute(*, railcar: Railcar, layer_index: int, model_version: ModelVersion) -> Explanation:
    """The cached explanation, computed and stored once. Re-running finds it and returns it."""
    found = cached(railcar=railcar, layer_index=layer_index, model_version=model_version)
    if found is not None:
        return found
    frame = keyframe_of(railcar=railcar, layer_index=layer_index)
    data, width, height = heatmap_png(trained=registry.load(model_version), frame=frame)
    digest = hashlib.sha256(data).hexdigest()
    name = f"explanations/{digest[:2]}/{digest}.png"
    if not default_storage.exists(name):
        name = default_storage.save(name, ContentFile(data))
    with transaction.atomic():
        # Two workers racing on the same layer: the constraint keeps one row, both return it.
        explanation, _ = Explanation.objects.get_or_create(
            railcar=railcar,
            model_version=model_version,
            layer_index=layer_index,
            defaults={"file": name, "sha256": digest, "width": width, "height": height},
        )
    return explanation


def request(*, railcar: Railcar, layer_index: int) -> Explanation | None:
    """The production model's explanation of a layer if cached; otherwise it is queued (after
    commit) and None returned, or, with eager tasks, computed at once and returned. Raises
    NotExplainable when it cannot be computed."""
    model_version = explainable(railcar=railcar, layer_index=layer_index)
    found = cached(railcar=railcar, layer_index=layer_index, model_version=model_version)
    if found is not None:
        return found
    transaction.on_commit(lambda: enqueue(COMPUTE_TASK, railcar.pk, layer_index, model_version.pk))
    return cached(railcar=railcar, layer_index=layer_index, model_version=model_version)
