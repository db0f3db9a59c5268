"""Fine-tuning the backbone with the heads (mlloop/finetune.py): which parameters train, a run
that registers a fine-tuned backbone, and the features and scores that follow from it."""

import pytest
import timm
import torch

from mlloop import registry, scoring
from mlloop.config import feature_key, model_config
from mlloop.features import extractor
from mlloop.finetune import trainable_names
from mlloop.models import FrameFeature, ModelVersion, RailcarScore
from tests.mlloop.model_factories import TINY, frozen_dataset, scrap_railcar, splits, train_run

torch.set_num_threads(2)

FINETUNED = {**TINY, "backbone": "test_efficientnet", "pretrained_weights": "none",
             "image_size": 48, "epochs": 6, "finetune_stages": 1, "finetune_epochs": 3,
             "finetune_lr": 3e-3}  # fmt: skip


def test_only_the_last_stages_read_are_trained():
    backbone = timm.create_model("test_efficientnet", pretrained=False, num_classes=0)

    one = trainable_names(backbone, (0, 1), 1)
    both = trainable_names(backbone, (0, 1), 2)

    assert one and all(name.startswith("blocks.1.") for name in one)
    assert set(one) < set(both) and any(name.startswith("conv_stem") for name in both)
    assert not any(name.startswith(("blocks.2.", "conv_head")) for name in both)


def test_finetune_stages_are_validated():
    from django.core.exceptions import ValidationError

    for bad in (-1, 16, True, 1.5):
        with pytest.raises(ValidationError):
            model_config(finetune_stages=bad)


@pytest.mark.django_db
def test_a_fine_tuned_run_registers_its_own_backbone_and_scores_with_it():
    dataset = frozen_dataset(splits(10, 4, 3))

    run = train_run(dataset, **FINETUNED)

    assert run.status == ModelVersion.Status.SUCCEEDED, run.log
    assert "fine-tuning epoch 3/3" in run.log
    loaded = registry.load(run)
    frozen_key = feature_key(model_config(**FINETUNED))
    assert "models/backbone-" in loaded.config.pretrained_weights, run.log
    assert loaded.feature_key == run.metrics["feature_key"] != frozen_key
    tuned = extractor(loaded.config).backbone.state_dict()
    base = extractor(model_config(**FINETUNED)).backbone.state_dict()
    changed = [k for k in base if not torch.equal(base[k], tuned[k])]
    assert changed and all(k.startswith("blocks.1.") for k in changed)
    unlabeled = scrap_railcar(7.0)

    scoring.score_railcars(model_version=run, railcar_ids=[unlabeled.pk])

    assert RailcarScore.objects.filter(railcar=unlabeled, model_version=run).exists()
    assert FrameFeature.objects.filter(frame__railcar=unlabeled, feature_key=loaded.feature_key)
