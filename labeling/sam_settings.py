"""Whether segment-anything is configured, answered without importing torch."""

from django.conf import settings


def sam_enabled() -> bool:
    """True when a checkpoint is configured, or the model is the tiny one (which needs none)."""
    model_type = getattr(settings, "SAM_MODEL_TYPE", "vit_b")
    return model_type == "tiny" or bool(getattr(settings, "SAM_CHECKPOINT", ""))
