import hashlib
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import Frame, Railcar
from scrapannot.models import AuditEvent
from tests.labeling.unloadings import boxed_unloading, named_layers_unloading

pytestmark = pytest.mark.django_db


def ingest(*folders) -> str:
    out = StringIO()
    call_command("ingest", *map(str, folders), stdout=out, stderr=out)
    return out.getvalue()


def test_it_ingests_a_folder_like_the_api_does(tmp_path):
    folder = named_layers_unloading().write(tmp_path / "u1")

    output = ingest(folder)

    assert "ingested railcar RC-58231774: 6 frames (6 decodable), 2 layers" in output
    railcar = Railcar.objects.get()
    assert railcar.frames.count() == 6 and railcar.layers.count() == 2
    event = AuditEvent.objects.get()
    assert event.action == "unloading.ingested" and event.actor_label == "command:ingest"


def test_the_api_and_the_command_agree_on_an_unloading(tmp_path, plant_client):
    unloading = boxed_unloading([0, 0.5, 1.0, 0.5, 0, 0, 0.8, 1.0, 0])
    ingest(unloading.write(tmp_path / "u"))

    response = unloading.post(plant_client)

    assert response.status_code == 200  # the same unloading, already ingested
    assert response.json()["layers"] == 2


def test_running_it_twice_is_idempotent(tmp_path):
    folder = named_layers_unloading().write(tmp_path / "u1")
    ingest(folder)

    output = ingest(folder)

    assert "already ingested" in output
    assert Railcar.objects.count() == 1 and AuditEvent.objects.count() == 1


def test_a_bad_folder_fails_the_command_but_not_the_good_ones_beside_it(tmp_path):
    good = named_layers_unloading(railcar="RC-1").write(tmp_path / "good")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "unloading.json").write_text("{ this is not json")
    missing = tmp_path / "empty"
    missing.mkdir()

    with pytest.raises(CommandError, match="2 of 3 unloadings not ingested"):
        ingest(bad, good, missing)

    assert list(Railcar.objects.values_list("real_id", flat=True)) == ["RC-1"]


def test_an_invalid_manifest_names_the_field_and_writes_nothing(tmp_path):
    unloading = named_layers_unloading()
    unloading.manifest["frames"][0]["sha256"] = "not-a-hash"
    folder = unloading.write(tmp_path / "u")
    err = StringIO()

    with pytest.raises(CommandError):
        call_command("ingest", str(folder), stdout=StringIO(), stderr=err)

    assert "sha256" in err.getvalue()
    assert Railcar.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_a_symlink_in_the_folder_is_not_followed(tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"the contents of /etc/shadow")
    unloading = named_layers_unloading(layers=1, per_layer=2)
    name = unloading.manifest["frames"][0]["file"]
    del unloading.files[name]
    folder = unloading.write(tmp_path / "u")
    (folder / name).symlink_to(secret)
    unloading.frame(name)["sha256"] = hashlib.sha256(secret.read_bytes()).hexdigest()
    (folder / "unloading.json").write_text(json.dumps(unloading.manifest))

    ingest(folder)

    frame = Frame.objects.get(source_name=name)
    assert frame.rejection == "missing"
    assert not frame.file


def test_an_oversized_manifest_is_refused(tmp_path, settings):
    folder = tmp_path / "u"
    folder.mkdir()
    (folder / "unloading.json").write_bytes(b" " * (4 * 1024 * 1024 + 1))

    with pytest.raises(CommandError):
        ingest(folder)


@pytest.mark.parametrize("named_layers", [False, True], ids=["boxes", "named layers"])
def test_synthetic_unloadings_ingest_into_the_layers_the_generator_made(tmp_path, named_layers):
    from operations.synth import write_unloadings

    truths = write_unloadings(
        out_dir=tmp_path, railcars=3, seed=11, width=320, height=180, named_layers=named_layers
    )

    ingest(*(tmp_path / truth.folder for truth in truths))

    for truth in truths:
        railcar = Railcar.objects.get(real_id=truth.railcar)
        assert railcar.layers.count() == len(truth.layer_contamination_pct)
        assert railcar.frames.count() == len(truth.files)
        if not named_layers:
            # Every frame of grab k (1-based) lands in layer k; frames between grabs in none.
            got = [f.layer.index if f.layer else None for f in railcar.frames.order_by("index")]
            assert got == list(truth.frame_grabs)
        # The truth never travels with the unloading.
        manifest = (tmp_path / truth.folder / "unloading.json").read_text()
        assert truth.grade not in manifest and "contamination" not in manifest
