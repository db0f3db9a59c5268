"""The ingest pipeline on a real Celery worker, through the real Redis."""

from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.models import FrameCheck, Railcar
from labeling.quality import CHECKS
from operations.synth import write_unloadings
from scrapannot.models import AuditEvent
from tests.celery_worker import wait_for
from tests.labeling.unloadings import Unloading

Status = Railcar.Status


def post_synthetic(tmp_path, plant, *, seed: int, frames_per_layer: int = 3) -> Railcar:
    import json

    (truth,) = write_unloadings(
        out_dir=tmp_path / "synth", railcars=1, seed=seed, width=640, height=360,
        defect_share=0.0, layers=(4, 4), frames_per_layer=frames_per_layer,
    )  # fmt: skip
    folder = tmp_path / "synth" / truth.folder
    manifest = json.loads((folder / "unloading.json").read_text())
    files = {f["file"]: (folder / f["file"]).read_bytes() for f in manifest["frames"]}
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=plant).key}")
    response = Unloading(manifest=manifest, files=files).post(client)
    assert response.status_code == 201, response.content
    return Railcar.objects.get(real_id=truth.railcar)


def test_an_ingested_railcar_is_checked_by_a_worker_and_reaches_the_pool(
    on_postgresql, celery_worker, plant, tmp_path
):
    celery_worker.start(queues="quality")

    railcar = post_synthetic(tmp_path, plant, seed=21)

    wait_for(
        lambda: Railcar.objects.filter(pk=railcar.pk, status=Status.IN_POOL).exists(),
        what="the railcar to reach the pool",
    )
    assert FrameCheck.objects.filter(frame__railcar=railcar).count() == (
        railcar.frames.count() * len(CHECKS)
    )


def test_a_worker_killed_mid_railcar_loses_nothing_and_duplicates_nothing(
    on_postgresql, celery_worker, plant, tmp_path
):
    celery_worker.start(queues="quality", app="tests.slow_worker")
    railcar = post_synthetic(tmp_path, plant, seed=22, frames_per_layer=5)
    frames = railcar.frames.count()
    # Kill it once a few frames are checked and the railcar is still being checked.
    wait_for(
        lambda: (
            FrameCheck.objects.filter(frame__railcar=railcar).values("frame").distinct().count()
            >= 3
        ),
        what="the first frames to be checked",
    )
    celery_worker.kill()
    done_before_kill = FrameCheck.objects.filter(frame__railcar=railcar).count()
    assert Railcar.objects.get(pk=railcar.pk).status == Status.CHECKING
    assert done_before_kill < frames * len(CHECKS)

    celery_worker.start(queues="quality")  # acks_late: the message comes back to this one

    wait_for(
        lambda: Railcar.objects.filter(pk=railcar.pk, status=Status.IN_POOL).exists(),
        timeout=90,
        what="the redelivered task to finish the railcar",
    )
    assert FrameCheck.objects.filter(frame__railcar=railcar).count() == frames * len(CHECKS)
    assert AuditEvent.objects.filter(action="quality.checked").count() == 1
    assert AuditEvent.objects.filter(action="unloading.ingested").count() == 1
