"""Railcars ready for the pool, without going through synth and the checks (fast)."""

import hashlib
import itertools
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from labeling.models import Frame, Layer, Railcar
from scrapannot.roles import Role
from tests.conftest import jpeg_bytes

_serial = itertools.count(1)


def pool_railcar(
    *, layers: int = 2, frames_per_layer: int = 2, raters: int = 3, priority: float = 0.0,
    with_files: bool = True, created_offset_s: int = 0,
) -> Railcar:  # fmt: skip
    n = next(_serial)
    start = datetime(2026, 11, 21, 8, 0, tzinfo=UTC) + timedelta(hours=n)
    railcar = Railcar.objects.create(
        real_id=f"RC-{70000000 + n}", line="L2", camera="L2-TOP-1",
        fingerprint=hashlib.sha256(f"railcar {n}".encode()).hexdigest(),
        unloading_started_at=start, unloading_ended_at=start + timedelta(minutes=5),
        layer_source="manifest", status=Railcar.Status.IN_POOL, priority=priority,
        raters_needed=raters, open_slots=raters,
    )  # fmt: skip
    if created_offset_s:
        Railcar.objects.filter(pk=railcar.pk).update(
            created_at=railcar.created_at + timedelta(seconds=created_offset_s)
        )
    position = 0
    for layer_index in range(1, layers + 1):
        layer = Layer.objects.create(railcar=railcar, index=layer_index)
        frames = []
        for _ in range(frames_per_layer):
            data = jpeg_bytes(96, 54, seed=n * 1000 + position)
            digest = hashlib.sha256(data).hexdigest()
            name = f"frames/{digest[:2]}/{digest[2:4]}/{digest}.jpg"
            if with_files and not default_storage.exists(name):
                default_storage.save(name, ContentFile(data))
            frames.append(
                Frame.objects.create(
                    railcar=railcar,
                    layer=layer,
                    index=position,
                    source_name=f"{railcar.real_id}_{position}.jpg",
                    captured_at=start + timedelta(seconds=position),
                    camera="L2-TOP-1",
                    declared_sha256=digest,
                    content_sha256=digest,
                    file=name if with_files else "",
                    size_bytes=len(data),
                    width=96,
                    height=54,
                    image_format="JPEG",
                    quality=Frame.Quality.ELIGIBLE,
                )  # fmt: skip
            )
            position += 1
        layer.keyframe = frames[0]
        layer.save(update_fields=["keyframe"])
    return railcar


def annotators(count: int, *, prefix: str = "rater") -> list[User]:
    group = Group.objects.get_or_create(name=Role.ANNOTATOR.value)[0]
    users = []
    for i in range(count):
        user = User.objects.create_user(username=f"{prefix}{i}", password="x-pass-1")
        user.groups.add(group)
        users.append(user)
    return users
