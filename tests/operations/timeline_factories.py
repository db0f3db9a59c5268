"""Railcars with a history, and the tools the timeline tests read and tamper with it through."""

from decimal import Decimal

from django.core.management import call_command
from django.db import connection

from labeling import annotation, pipeline, pool
from labeling.models import Railcar
from operations.synth import write_unloadings
from scrapannot.models import AuditEvent
from tests.adjudication.factories import rate_railcar
from tests.labeling.factories import annotators, pool_railcar

PROMPTS = {"points": [[10, 10]], "labels": [1]}


def square_rle(railcar: Railcar) -> dict:
    """A small square mask in COCO RLE for a frame of `railcar`."""
    import numpy as np

    from labeling import rle

    frame = railcar.frames.order_by("index").first()
    pixels = np.zeros((frame.height, frame.width), dtype=bool)
    pixels[5:20, 5:20] = True
    return rle.encode(pixels)


def tamper(sql: str, params: list) -> None:
    """What an attacker with the table owner's rights does: drop the guard, then edit."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE scrapannot_auditevent DISABLE TRIGGER USER")
        cursor.execute(sql, params)
        cursor.execute("ALTER TABLE scrapannot_auditevent ENABLE TRIGGER USER")


def seqs_on(object_type: str, ids) -> set[int]:
    return set(
        AuditEvent.objects.filter(
            object_type=object_type, object_id__in=[str(i) for i in ids]
        ).values_list("seq", flat=True)
    )


def ingested_railcar(tmp_path) -> Railcar:
    """A small synthetic unloading through the real ingest command and quality checks."""
    (truth,) = write_unloadings(
        out_dir=tmp_path, railcars=1, seed=7, width=320, height=180, layers=(3, 3),
        frames_per_layer=2, defect_share=0.0,
    )  # fmt: skip
    call_command("ingest", str(tmp_path / truth.folder), stdout=None)
    railcar = Railcar.objects.get(real_id=truth.railcar)
    return pipeline.check_railcar(railcar_id=railcar.pk)


def busy_railcar(events: int) -> Railcar:
    """A rated railcar whose first rater toggled a frame `events` times before rating."""
    railcar = pool_railcar(raters=2)
    raters = annotators(2, prefix=f"q{events}-")
    assignment = pool.next_assignment(annotator=raters[0])
    frame = railcar.frames.order_by("index").first()
    for _ in range(events // 2):
        annotation.exclude_frame(
            uid=assignment.uid, annotator=raters[0], frame_uid=frame.uid, code="blur"
        )
        annotation.include_frame(uid=assignment.uid, annotator=raters[0], frame_uid=frame.uid)
    mask = annotation.save_mask(
        uid=assignment.uid, annotator=raters[0], frame_uid=frame.uid, rle=square_rle(railcar),
        prompts=PROMPTS, engine="test",
    )  # fmt: skip
    annotation.delete_mask(uid=assignment.uid, annotator=raters[0], mask_uid=mask.uid)
    annotation.submit_rating(
        uid=assignment.uid, annotator=raters[0], contamination_pct=Decimal("3"), grade="3A",
        seconds_spent=5,
    )  # fmt: skip
    rate_railcar(railcar, raters[1:], ["3"], ["3A"])
    return railcar
