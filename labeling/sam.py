"""Segment-anything: the model, and a cache of frame image embeddings in the frame storage.

The image encoder is the slow part of SAM (seconds per frame on CPU for vit_b, more for vit_h);
the prompt encoder and mask decoder take tens of milliseconds. So each keyframe's embedding is
computed once, by the embeddings task when its railcar enters the pool, and stored beside the
frames; a click then loads it and runs only the decoder (`predictor_from_embedding`).

Embeddings are content-addressed: `sam-embeddings/<model key>/<sha[:2]>/<frame sha>.pt`. The model
key is derived from the checkpoint's bytes, so a new checkpoint never reuses stale embeddings, and
nothing about the railcar is in the name.

Settings: `SAM_CHECKPOINT` (a local .pth file; "" disables SAM), `SAM_MODEL_TYPE` ("vit_b",
"vit_l", "vit_h", or "tiny": a small randomly initialised SAM for tests and demos, whose
checkpoint is optional), `SAM_DEVICE` ("cpu", or "cuda" when available), `TORCH_NUM_THREADS`
(0: torch's default).
"""

import hashlib
import io
import logging
import os
import pickle
import re
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image
from segment_anything import SamPredictor, sam_model_registry
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from labeling.framefiles import read_frame
from labeling.models import Frame
from labeling.sam_settings import sam_enabled as sam_enabled  # re-exported

logger = logging.getLogger(__name__)

MODEL_TYPES = ("vit_b", "vit_l", "vit_h", "tiny")
STORAGE_PREFIX = "sam-embeddings"
# Bumped when the stored layout changes; older files then read as missing and are recomputed.
EMBEDDING_FORMAT = 1
# SAM's fixed geometry (segment_anything/build_sam.py): 1024 px input, 16 px patches, so the
# embedding is 256 x 64 x 64 whatever the encoder's size.
IMAGE_SIZE = 1024
PATCH_SIZE = 16
PROMPT_EMBED_DIM = 256
_SHA256 = re.compile(r"[0-9a-f]{64}")


class SamCheckpointError(RuntimeError):
    """The configured checkpoint file is missing, unreadable, or not a SAM state_dict."""


@dataclass(frozen=True)
class FrameEmbedding:
    """What `SamPredictor.set_image` leaves behind, and all that `predict` needs of the image.

    `features` is 1 x 256 x 64 x 64 float32 on the CPU; `original_size` is the frame's (H, W);
    `input_size` is (H, W) after resizing the long side to 1024.
    """

    features: torch.Tensor
    original_size: tuple[int, int]
    input_size: tuple[int, int]


@dataclass(frozen=True)
class _Config:
    model_type: str
    checkpoint: str
    # (inode, size, mtime_ns) of the checkpoint: a replaced file is loaded, and keyed, afresh.
    stamp: tuple[int, int, int] | None
    device: str


def _config() -> _Config:
    model_type = getattr(settings, "SAM_MODEL_TYPE", "vit_b")
    if model_type not in MODEL_TYPES:
        raise ImproperlyConfigured(
            f"SAM_MODEL_TYPE must be one of {', '.join(MODEL_TYPES)}, not {model_type!r}"
        )
    checkpoint = str(getattr(settings, "SAM_CHECKPOINT", "") or "")
    if not checkpoint and model_type != "tiny":
        raise ImproperlyConfigured("SAM is disabled: SAM_CHECKPOINT names no checkpoint file")
    stamp = None
    if checkpoint:
        try:
            stat = os.stat(checkpoint)
        except OSError as exc:
            raise SamCheckpointError(f"SAM checkpoint {checkpoint}: {exc.strerror}") from exc
        stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    device = getattr(settings, "SAM_DEVICE", "cpu") or "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        logger.warning("SAM_DEVICE=%s but CUDA is not available: SAM runs on the CPU", device)
        device = "cpu"
    return _Config(model_type=model_type, checkpoint=checkpoint, stamp=stamp, device=device)


def build_tiny_sam(*, seed: int = 0) -> Sam:
    """A small, randomly initialised SAM with the real geometry, for tests and demos.

    Only the image encoder is shrunk (two windowed blocks, 32 channels): its output, the prompt
    encoder and the mask decoder are those of the released models, so a click costs what it costs
    with vit_b/l/h and a stored embedding has the real shape and size.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        sam = Sam(
            image_encoder=ImageEncoderViT(
                depth=2,
                embed_dim=32,
                img_size=IMAGE_SIZE,
                mlp_ratio=2,
                norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                num_heads=2,
                patch_size=PATCH_SIZE,
                qkv_bias=True,
                use_rel_pos=True,
                # No global-attention block: one over 64 x 64 tokens costs more than the rest.
                global_attn_indexes=(),
                window_size=14,
                out_chans=PROMPT_EMBED_DIM,
            ),
            prompt_encoder=PromptEncoder(
                embed_dim=PROMPT_EMBED_DIM,
                image_embedding_size=(IMAGE_SIZE // PATCH_SIZE, IMAGE_SIZE // PATCH_SIZE),
                input_image_size=(IMAGE_SIZE, IMAGE_SIZE),
                mask_in_chans=16,
            ),
            mask_decoder=MaskDecoder(
                num_multimask_outputs=3,
                transformer=TwoWayTransformer(
                    depth=2, embedding_dim=PROMPT_EMBED_DIM, mlp_dim=2048, num_heads=8
                ),
                transformer_dim=PROMPT_EMBED_DIM,
                iou_head_depth=3,
                iou_head_hidden_dim=256,
            ),
            pixel_mean=[123.675, 116.28, 103.53],
            pixel_std=[58.395, 57.12, 57.375],
        )
    return sam.eval()


def _read_state_dict(path: str) -> dict[str, torch.Tensor]:
    try:
        # weights_only: a checkpoint is data; a pickle that would run code is refused.
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise SamCheckpointError(f"SAM checkpoint {path} cannot be read: {exc}") from exc
    if not isinstance(state_dict, dict):
        raise SamCheckpointError(f"SAM checkpoint {path} holds no state_dict")
    return state_dict


def _build(config: _Config) -> Sam:
    # Read first: a bad file fails before a vit_h is built. Loaded here, not by the registry, so
    # that it is read onto the CPU with weights_only whatever torch's defaults are.
    state_dict = _read_state_dict(config.checkpoint) if config.checkpoint else None
    if config.model_type == "tiny":
        sam = build_tiny_sam()
    else:
        sam = sam_model_registry[config.model_type](checkpoint=None)
    if state_dict is not None:
        try:
            sam.load_state_dict(state_dict)
        except RuntimeError as exc:  # missing, unexpected or mis-shaped weights
            raise SamCheckpointError(
                f"SAM checkpoint {config.checkpoint} does not fit {config.model_type}: {exc}"
            ) from exc
    return sam.eval().to(config.device)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(8 * 1024 * 1024):
                digest.update(chunk)
    except OSError as exc:
        raise SamCheckpointError(f"SAM checkpoint {path}: {exc.strerror}") from exc
    return digest.hexdigest()


def _state_digest(sam: Sam) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(sam.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


# One model per process, rebuilt only when the configuration (or the checkpoint file) changes.
# The lock keeps two request threads from loading a multi-GB checkpoint twice.
_lock = threading.Lock()
_loaded: dict[_Config, Sam] = {}
_keys: dict[_Config, str] = {}
_threads_set = False


def load_sam() -> Sam:
    """The configured SAM, in eval mode on `SAM_DEVICE`, loaded once per process."""
    global _threads_set
    config = _config()
    with _lock:
        sam = _loaded.get(config)
        if sam is None:
            threads = int(getattr(settings, "TORCH_NUM_THREADS", 0) or 0)
            if threads > 0 and not _threads_set:
                torch.set_num_threads(threads)
                _threads_set = True
            sam = _build(config)
            _loaded.clear()  # a vit_h takes 2.5 GB: never keep an old one beside the new one
            _loaded[config] = sam
        return sam


def model_key() -> str:
    """A short id of the configured model: its type and the checkpoint's SHA-256 (first 16 hex).

    The tiny model without a checkpoint is keyed by its weights. Hashed once per process.
    """
    config = _config()
    with _lock:
        key = _keys.get(config)
    if key is not None:
        return key
    digest = _file_digest(config.checkpoint) if config.checkpoint else _state_digest(load_sam())
    key = f"{config.model_type}-{digest[:16]}"
    with _lock:
        _keys[config] = key
    return key


def compute_embedding(*, image_rgb: np.ndarray) -> FrameEmbedding:
    """Run the image encoder on an H x W x 3 uint8 RGB image."""
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError(
            f"expected an H x W x 3 uint8 image, got {image_rgb.shape} {image_rgb.dtype}"
        )
    predictor = SamPredictor(load_sam())
    predictor.set_image(image_rgb, image_format="RGB")
    return FrameEmbedding(
        features=predictor.features.detach().to("cpu", torch.float32),
        original_size=(int(predictor.original_size[0]), int(predictor.original_size[1])),
        input_size=(int(predictor.input_size[0]), int(predictor.input_size[1])),
    )


def embedding_storage_name(*, content_sha256: str) -> str:
    if not _SHA256.fullmatch(content_sha256):
        raise ValueError(f"not a SHA-256 hex digest: {content_sha256!r}")
    return f"{STORAGE_PREFIX}/{model_key()}/{content_sha256[:2]}/{content_sha256}.pt"


def _serialize(embedding: FrameEmbedding, *, key: str) -> bytes:
    features = embedding.features.detach().to("cpu")
    # float16 halves the file (2 MiB instead of 4); SAM's features come out of a LayerNorm, well
    # within its range. The check keeps a model with larger activations exact rather than inf.
    half = features.to(torch.float16)
    if torch.isfinite(half).all():
        features = half
    out = io.BytesIO()
    torch.save(
        {
            "format": EMBEDDING_FORMAT,
            "model_key": key,
            "features": features.contiguous(),
            "original_size": list(embedding.original_size),
            "input_size": list(embedding.input_size),
        },
        out,
    )
    return out.getvalue()


def _deserialize(data: bytes, *, key: str) -> FrameEmbedding:
    """Parse a stored embedding; ValueError when it is not one of ours, for this model."""
    try:
        # weights_only: tensors, dicts, lists and numbers only; a pickle that would import or
        # call anything is refused before it runs.
        payload: Any = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        raise ValueError(f"unreadable: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != EMBEDDING_FORMAT:
        raise ValueError("not an embedding of this format")
    if payload.get("model_key") != key:
        raise ValueError(f"made by model {payload.get('model_key')!r}, not {key!r}")
    features = payload.get("features")
    if not isinstance(features, torch.Tensor) or features.ndim != 4 or features.shape[0] != 1:
        raise ValueError("features are not a 1 x C x H x W tensor")
    sizes = [payload.get("original_size"), payload.get("input_size")]
    for size in sizes:
        if not (
            isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)
        ):
            raise ValueError("sizes are not (H, W) pairs")
    return FrameEmbedding(
        features=features.to(torch.float32),
        original_size=(sizes[0][0], sizes[0][1]),
        input_size=(sizes[1][0], sizes[1][1]),
    )


def save_embedding(*, content_sha256: str, embedding: FrameEmbedding) -> str:
    """Store an embedding under its content-addressed name, replacing any file there; the name."""
    name = embedding_storage_name(content_sha256=content_sha256)
    data = _serialize(embedding, key=model_key())
    # The name is content-addressed, so whatever is there is (or should be) the same embedding;
    # replacing also heals a file truncated by a killed worker.
    default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        # Another worker saved the same embedding between our delete and save, and the storage
        # gave ours a fresh name (FileSystemStorage does): theirs is as good, drop ours.
        default_storage.delete(saved)
    return name


def load_embedding(*, content_sha256: str) -> FrameEmbedding | None:
    """The stored embedding of a frame for the configured model, or None.

    None both when nothing is stored and when the file is unreadable, refused (a pickle that
    would run code, which `weights_only` never executes) or not ours: the caller recomputes and
    `save_embedding` replaces the file. Unreadable files are logged, for they mean a killed
    writer or tampering.
    """
    name = embedding_storage_name(content_sha256=content_sha256)
    try:
        with default_storage.open(name, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    try:
        return _deserialize(data, key=model_key())
    except ValueError as exc:
        logger.error("SAM embedding %s is ignored: %s", name, exc)
        return None


def _frame_rgb(frame: Frame) -> np.ndarray:
    if not frame.file or frame.rejection:
        raise ValueError(f"frame {frame.pk} has no decodable image")
    with Image.open(io.BytesIO(read_frame(frame=frame))) as image:
        return np.asarray(image.convert("RGB"))


def ensure_embedding(*, frame: Frame) -> bool:
    """Compute and store the frame's embedding unless a readable one is stored; True if computed.

    Safe to re-run and to run twice at once: both runs compute the same bytes under the same name.
    """
    if not frame.content_sha256:
        raise ValueError(f"frame {frame.pk} has no stored content")
    if load_embedding(content_sha256=frame.content_sha256) is not None:
        return False
    embedding = compute_embedding(image_rgb=_frame_rgb(frame))
    save_embedding(content_sha256=frame.content_sha256, embedding=embedding)
    return True


def predictor_from_embedding(*, embedding: FrameEmbedding) -> SamPredictor:
    """A `SamPredictor` whose image is set from a cached embedding: `predict` runs the decoder only.

    Build one per request: it is cheap (no weights are copied) and holds per-image state, so
    sharing one across gunicorn threads would mix frames. The model itself is shared; its
    inference-mode forward passes do not mutate it.
    """
    sam = load_sam()
    expected = (1, sam.prompt_encoder.embed_dim, *sam.prompt_encoder.image_embedding_size)
    if tuple(embedding.features.shape) != expected:
        raise ValueError(
            f"embedding is {tuple(embedding.features.shape)}, the model expects {expected}"
        )
    predictor = SamPredictor(sam)
    predictor.features = embedding.features.to(sam.device, torch.float32)
    predictor.original_size = embedding.original_size
    predictor.input_size = embedding.input_size
    predictor.is_image_set = True
    return predictor
