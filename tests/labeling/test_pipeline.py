import pytest
from django.core.management import call_command

from labeling import pipeline
from labeling.models import Frame, FrameCheck, Railcar
from labeling.policies import quality_thresholds
from labeling.quality import CHECKS
from operations.synth import write_unloadings
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy

pytestmark = pytest.mark.django_db

Status = Railcar.Status


def synth_railcar(tmp_path, *, defect_share: float = 0.0, seed: int = 5) -> Railcar:
    (truth,) = write_unloadings(
        out_dir=tmp_path / f"s{seed}", railcars=1, seed=seed, width=640, height=360,
        defect_share=defect_share, layers=(4, 4),
    )  # fmt: skip
    call_command("ingest", str(tmp_path / f"s{seed}" / truth.folder), stdout=None)
    return Railcar.objects.get(real_id=truth.railcar)


def test_a_clean_railcar_is_checked_and_enters_the_pool(tmp_path):
    railcar = synth_railcar(tmp_path)
    frames = railcar.frames.count()

    railcar = pipeline.check_railcar(railcar_id=railcar.pk)

    assert railcar.status == Status.IN_POOL, railcar.attention_reason
    assert FrameCheck.objects.filter(frame__railcar=railcar).count() == frames * len(CHECKS)
    assert not railcar.frames.filter(quality=Frame.Quality.PENDING).exists()
    event = AuditEvent.objects.get(action="quality.checked")
    assert event.payload["outcome"] == "in_pool"
    assert event.payload["thresholds"] == quality_thresholds().as_dict()
    # Every layer's keyframe is an eligible frame.
    for layer in railcar.layers.all():
        assert layer.keyframe.quality == Frame.Quality.ELIGIBLE


def test_each_check_keeps_its_value_threshold_and_verdict(tmp_path):
    railcar = synth_railcar(tmp_path)
    pipeline.check_railcar(railcar_id=railcar.pk)

    check = FrameCheck.objects.filter(frame__railcar=railcar, name="blur").first()

    assert check.value is not None
    assert check.threshold == quality_thresholds().min_sharpness
    assert check.passed == (check.value >= check.threshold)
    assert "sharpness" in check.detail


def test_a_railcar_of_defective_frames_goes_to_the_attention_list_with_reasons(tmp_path):
    railcar = synth_railcar(tmp_path, defect_share=1.0)

    railcar = pipeline.check_railcar(railcar_id=railcar.pk)

    assert railcar.status == Status.NEEDS_ATTENTION
    assert "policy needs 3" in railcar.attention_reason
    assert "Failed checks" in railcar.attention_reason
    assert railcar.frames.filter(quality=Frame.Quality.INELIGIBLE).count() == railcar.frames.count()


def test_a_frame_rejected_at_ingest_fails_its_decode_check(tmp_path):
    railcar = synth_railcar(tmp_path)
    frame = railcar.frames.order_by("index")[3]
    Frame.objects.filter(pk=frame.pk).update(
        rejection=Frame.Rejection.TRUNCATED, rejection_detail="image file is truncated", file=""
    )

    pipeline.check_railcar(railcar_id=railcar.pk)

    (check,) = FrameCheck.objects.filter(frame=frame)
    assert (check.name, check.passed) == ("decode", False)
    assert "truncated" in check.detail.lower()


def test_checking_a_railcar_twice_changes_nothing(tmp_path):
    railcar = synth_railcar(tmp_path)
    pipeline.check_railcar(railcar_id=railcar.pk)
    checks = sorted(FrameCheck.objects.values_list("pk", flat=True))

    pipeline.check_railcar(railcar_id=railcar.pk)

    assert sorted(FrameCheck.objects.values_list("pk", flat=True)) == checks
    assert AuditEvent.objects.filter(action="quality.checked").count() == 1


def test_a_railcar_that_vanished_is_a_no_op():
    assert pipeline.check_railcar(railcar_id=987654) is None


def test_a_stricter_threshold_reapplied_moves_a_railcar_out_of_the_pool(tmp_path, admin_user):
    railcar = synth_railcar(tmp_path)
    pipeline.check_railcar(railcar_id=railcar.pk)
    set_policy(key="quality.min_sharpness", value=1e6, actor=admin_user)

    railcar = pipeline.rejudge(railcar_id=railcar.pk, thresholds=quality_thresholds())

    assert railcar.status == Status.NEEDS_ATTENTION
    blur = FrameCheck.objects.filter(frame__railcar=railcar, name="blur")
    assert not blur.filter(passed=True).exists()
    assert set(blur.values_list("threshold", flat=True)) == {1e6}
    assert AuditEvent.objects.filter(action="policy.changed").get().payload["new"] == 1e6
    assert AuditEvent.objects.filter(action="quality.rejudged").count() == 1

    set_policy(key="quality.min_sharpness", value=0.0, actor=admin_user)
    railcar = pipeline.rejudge(railcar_id=railcar.pk, thresholds=quality_thresholds())

    assert railcar.status == Status.IN_POOL


def test_entering_the_pool_precomputes_keyframe_embeddings_when_sam_is_configured(
    tmp_path, settings, django_capture_on_commit_callbacks
):
    from labeling import sam

    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "tiny", ""
    railcar = synth_railcar(tmp_path)

    with django_capture_on_commit_callbacks(execute=True):
        railcar = pipeline.check_railcar(railcar_id=railcar.pk)

    assert railcar.status == Status.IN_POOL
    keyframes = [layer.keyframe for layer in railcar.layers.all()]
    assert all(sam.load_embedding(content_sha256=f.content_sha256) for f in keyframes)
    others = railcar.frames.exclude(pk__in=[f.pk for f in keyframes]).first()
    assert sam.load_embedding(content_sha256=others.content_sha256) is None


def test_without_sam_nothing_is_embedded(tmp_path, settings, django_capture_on_commit_callbacks):
    from labeling import sam

    settings.SAM_MODEL_TYPE, settings.SAM_CHECKPOINT = "vit_b", ""
    railcar = synth_railcar(tmp_path)

    with django_capture_on_commit_callbacks(execute=True):
        pipeline.check_railcar(railcar_id=railcar.pk)

    assert not sam.sam_enabled()
    assert not (tmp_path / "media" / "sam-embeddings").exists()


def test_checks_and_embeddings_travel_on_separate_queues():
    from scrapannot.celery import app

    route = app.amqp.router.route
    assert route({}, "labeling.check_railcar_quality")["queue"].name == "quality"
    assert route({}, "labeling.embed_keyframes")["queue"].name == "embeddings"
