"""Posting an unloading layer by layer: open, append frames, close; per-line posting rights."""

import hashlib
import threading
import uuid

import pytest
from django.contrib.auth.models import User

from labeling.models import Frame, FrameCheck, Layer, Railcar
from labeling.quality import CHECKS
from labeling.signals import layer_checked
from scrapannot.models import AuditEvent
from scrapannot.policy import set_policy
from scrapannot.roles import Role
from tests.concurrency import run_at_once
from tests.conftest import grant_lines, user_with_roles
from tests.labeling.unloadings import named_layers_unloading
from tests.operations.live_unloadings import API, LiveUnloading, token_client

Status = Railcar.Status


@pytest.fixture(autouse=True)
def _noise_frames_pass_the_checks(db):
    # The test frames are noise JPEGs, which the blur check fails (tests/labeling/unloadings.py).
    set_policy(key="quality.min_sharpness", value=0.0, actor=None)


@pytest.fixture
def client(plant):
    return token_client(plant)


@pytest.fixture
def checked_layers():
    received: list[tuple[int, int]] = []

    def handler(sender, *, railcar_id, layer_index, **kwargs):
        received.append((railcar_id, layer_index))

    layer_checked.connect(handler, dispatch_uid="test-live-ingest")
    yield received
    layer_checked.disconnect(dispatch_uid="test-live-ingest")


def test_an_unloading_opened_appended_layer_by_layer_and_closed_reaches_the_pool(
    client, checked_layers, django_capture_on_commit_callbacks
):
    unloading = LiveUnloading()
    with django_capture_on_commit_callbacks(execute=True):
        opened = unloading.open(client)
        first = unloading.append(client, unloading.layer(1))
        second = unloading.append(client, unloading.layer(2))
        unloading.append(client, unloading.layer(3))
    railcar = Railcar.objects.get(uid=unloading.uid)
    assert railcar.status == Status.RECEIVING

    with django_capture_on_commit_callbacks(execute=True):
        closed = unloading.close(client)

    assert opened.status_code == 201
    assert first.status_code == 201 and first.json()["appended"] == 3
    assert first.json()["keyframes"] == [1] and second.json()["keyframes"] == [2]
    assert checked_layers == [(railcar.pk, 1), (railcar.pk, 2), (railcar.pk, 3)]
    assert closed.status_code == 200
    railcar.refresh_from_db()
    assert railcar.status == Status.IN_POOL
    assert railcar.frames.count() == 9
    assert FrameCheck.objects.filter(frame__railcar=railcar).count() == 9 * len(CHECKS)
    assert all(layer.keyframe_id for layer in railcar.layers.all())
    assert railcar.unloading_ended_at > railcar.unloading_started_at
    assert list(
        AuditEvent.objects.filter(object_type="labeling.railcar", object_id=str(railcar.pk))
        .order_by("id")
        .values_list("action", flat=True)
    ) == [
        "unloading.opened",
        "unloading.frames_appended",
        "unloading.frames_appended",
        "unloading.frames_appended",
        "unloading.ingested",
        "quality.checked",
    ]


def test_a_few_frames_at_a_time_build_one_layer_and_move_its_keyframe(client):
    unloading = LiveUnloading(per_layer=4)
    unloading.open(client)
    layer = unloading.layer(1)
    head = type(layer)(entries=layer.entries[:2], files=dict(list(layer.files.items())[:2]))
    tail = type(layer)(entries=layer.entries[2:], files=dict(list(layer.files.items())[2:]))

    assert unloading.append(client, head).json()["keyframes"] == [1]
    assert unloading.append(client, tail).json()["keyframes"] == [1]

    (only,) = Layer.objects.filter(railcar__uid=unloading.uid)
    assert only.frames.count() == 4
    assert only.keyframe.index == 2  # the middle of four frames without boxes


def test_reposting_the_same_append_stores_nothing_twice(client):
    unloading = LiveUnloading()
    unloading.open(client)
    layer = unloading.layer(1)

    first = unloading.append(client, layer)
    again = unloading.append(client, layer)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["appended"] == 0
    assert Frame.objects.count() == 3
    assert AuditEvent.objects.filter(action="unloading.frames_appended").count() == 1


def test_opening_the_same_unloading_again_finds_it(client):
    unloading = LiveUnloading()
    first = unloading.open(client)
    again = unloading.open(client)

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["railcar"] == again.json()["railcar"]
    assert Railcar.objects.count() == 1


def test_appending_after_close_is_a_conflict(client):
    unloading = LiveUnloading()
    unloading.open(client)
    unloading.append(client, unloading.layer(1))
    unloading.close(client)

    late = unloading.append(client, unloading.layer(2))

    assert late.status_code == 409
    assert "closed" in late.json()["detail"]
    assert Frame.objects.count() == 3


def test_closing_twice_changes_nothing_and_an_empty_unloading_cannot_be_closed(client):
    empty = LiveUnloading(railcar="RC-EMPTY")
    empty.open(client)
    assert empty.close(client).status_code == 409

    unloading = LiveUnloading()
    unloading.open(client)
    unloading.append(client, unloading.layer(1))
    assert unloading.close(client).status_code == 200
    assert unloading.close(client).status_code == 200
    assert AuditEvent.objects.filter(action="unloading.ingested").count() == 1


def test_a_corrupt_frame_and_a_wrong_checksum_are_stored_as_rejected_frames(client):
    unloading = LiveUnloading()
    unloading.open(client)
    layer = unloading.layer(1)
    corrupt, wrong, good = (e["file"] for e in layer.entries)
    files = dict(layer.files)
    files[corrupt] = b"\xff\xd8\xff" + b"\x00" * 64
    layer.entries[0]["sha256"] = hashlib.sha256(files[corrupt]).hexdigest()
    files[wrong] = layer.files[wrong][:-1] + b"\x00"

    response = unloading.append(client, layer, files=files)

    assert response.status_code == 201
    body = response.json()
    reasons = {r["file"]: r["reason"] for r in body["rejected"]}
    assert reasons[wrong] == Frame.Rejection.CHECKSUM
    assert reasons[corrupt] in {Frame.Rejection.CORRUPT, Frame.Rejection.NOT_IMAGE,
                                Frame.Rejection.TRUNCATED}  # fmt: skip
    assert body["eligible"] == 1
    keyframe = Layer.objects.get(railcar__uid=unloading.uid).keyframe
    assert keyframe.source_name == good


def test_bad_appends_are_refused_with_a_reason_and_write_nothing(client):
    unloading = LiveUnloading()
    unloading.open(client)
    starting_late = unloading.append(client, unloading.layer(2))
    unloading.append(client, unloading.layer(1))

    skipping = unloading.append(client, unloading.layer(3))
    unnamed = unloading.layer(2)
    del unnamed.entries[0]["layer"]
    no_layer = unloading.append(client, unnamed)
    changed = unloading.layer(1)
    changed.entries[0]["sha256"] = "0" * 64
    other_content = unloading.append(client, changed)
    extra = unloading.layer(2)
    extra.files["stray.jpg"] = b"x"
    stray = unloading.append(client, extra)

    assert starting_late.status_code == 400
    assert skipping.status_code == 400 and "does not continue" in skipping.json()["detail"]
    assert no_layer.status_code == 400
    assert other_content.status_code == 409
    assert stray.status_code == 400
    assert Frame.objects.count() == 3


def test_an_unknown_unloading_is_not_found(client):
    body = LiveUnloading().layer(1).body()

    assert client.post(f"{API}/{uuid.uuid4()}/frames/", body, format="multipart").status_code == 404
    assert client.post(f"{API}/{uuid.uuid4()}/close/").status_code == 404


def test_a_plant_system_posts_only_for_its_lines(client, plant):
    elsewhere = LiveUnloading(line="L7")
    refused = elsewhere.open(client)
    whole = named_layers_unloading()
    whole.manifest["line"] = "L7"

    assert refused.status_code == 403
    assert "'L7'" in refused.json()["detail"]
    assert whole.post(client).status_code == 403
    assert Railcar.objects.count() == 0

    # Another line's open unloading looks like one that does not exist.
    other_plant = user_with_roles("plant-l7", Role.PLANT_SYSTEM)
    grant_lines(other_plant, "L7")
    elsewhere.open(token_client(other_plant))
    assert elsewhere.append(client, elsewhere.layer(1)).status_code == 404
    assert elsewhere.close(client).status_code == 404


def test_an_admin_posts_for_any_line_and_annotators_for_none(admin_user, annotator):
    assert LiveUnloading(line="L9").open(token_client(admin_user)).status_code == 201
    assert LiveUnloading(line="L2").open(token_client(annotator)).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_six_lines_posting_at_once_with_retries_store_nothing_twice(on_postgresql):
    set_policy(key="quality.min_sharpness", value=0.0, actor=None)
    plant = user_with_roles("plant-all", Role.PLANT_SYSTEM)
    lines = [f"L{n}" for n in range(1, 7)]
    grant_lines(plant, *lines)
    token_client(plant)  # the token, before the threads race for it
    # Two threads per line post the same unloading: each the other's retry.
    unloadings = [LiveUnloading(railcar=f"RC-{line}", line=line) for line in lines for _ in "ab"]
    turn = iter(range(len(unloadings)))
    # A retry arriving after the other thread closed would rightly be a 409: both finish
    # appending before either closes.
    appended = {line: threading.Barrier(2) for line in lines}

    def post_layers() -> list[int]:
        unloading = unloadings[next(turn)]
        client = token_client(User.objects.get(username="plant-all"))
        codes = [unloading.open(client).status_code]
        codes += [unloading.append(client, unloading.layer(n)).status_code for n in (1, 2, 3)]
        appended[unloading.line].wait(timeout=60)
        codes.append(unloading.close(client).status_code)
        return codes

    results = run_at_once(post_layers, threads=len(unloadings))

    assert all(code in (200, 201) for codes in results for code in codes), results
    assert Railcar.objects.count() == 6
    assert Frame.objects.count() == 6 * 9
    assert Layer.objects.count() == 6 * 3
    assert AuditEvent.objects.filter(action="unloading.frames_appended").count() == 6 * 3
    assert AuditEvent.objects.filter(action="unloading.ingested").count() == 6


def test_an_admin_grants_a_plant_system_a_line_from_the_command_line(plant):
    from django.core.management import call_command

    assert LiveUnloading(line="L8").open(token_client(plant)).status_code == 403

    call_command("grant_line", plant.username, "L8", "--create")

    assert LiveUnloading(line="L8").open(token_client(plant)).status_code == 201
    assert AuditEvent.objects.filter(action="line.granted").count() == 1
    call_command("grant_line", plant.username, "L8", "--revoke")
    assert LiveUnloading(railcar="RC-2", line="L8").open(token_client(plant)).status_code == 403


def test_an_unloading_left_open_is_closed_by_the_reconciler_after_its_idle_period(
    client, settings, django_capture_on_commit_callbacks
):
    """A plant system that dies before its close: the frames it sent are checked and labeled."""
    from datetime import timedelta

    from django.utils import timezone

    from labeling.reconcile import close_idle_unloadings

    settings.SCRAPANNOT = {**settings.SCRAPANNOT, "LIVE_IDLE_CLOSE_S": 3600}
    unloading, empty = LiveUnloading(), LiveUnloading(railcar="RC-61000002")
    with django_capture_on_commit_callbacks(execute=True):
        unloading.open(client)
        unloading.append(client, unloading.layer(1))
        unloading.append(client, unloading.layer(2))
        unloading.append(client, unloading.layer(3))
        empty.open(client)  # never received a frame: nothing to label
    railcar = Railcar.objects.get(uid=unloading.uid)
    received = railcar.received_at
    assert received is not None

    assert close_idle_unloadings(now=received + timedelta(minutes=59)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        closed = close_idle_unloadings(now=received + timedelta(minutes=61))

    assert closed == 1
    railcar.refresh_from_db()
    assert railcar.status == Status.IN_POOL
    assert Railcar.objects.get(uid=empty.uid).status == Status.RECEIVING
    event = AuditEvent.objects.get(action="unloading.ingested", object_id=str(railcar.pk))
    assert event.actor_label == "system" and "by the reconciler" in event.payload["closed"]
    # Once closed, it is closed: a late append gets 409, a second sweep changes nothing.
    assert unloading.append(client, unloading.layer(4)).status_code == 409
    assert close_idle_unloadings(now=timezone.now() + timedelta(days=1)) == 0
