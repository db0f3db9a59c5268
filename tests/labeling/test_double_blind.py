"""Double-blind, tested the way an attacker would test it.

The attacker is an annotator who holds one assignment on a railcar that two other annotators have
already rated. They try every URL of the app (the URL configuration, walked) and of the API (the
OpenAPI schema, walked), with every method, logged in and with a token, putting other people's
ids into every path parameter: assignments, frames, masks, railcars, layers, users, audit events.
Nothing that comes back may contain what double-blind hides: a railcar's plant id, line, camera or
capture time, a plant file name, another annotator's name, pseudonym, assignment, mask, note or
rating. A victim's id must answer exactly like an id that exists nowhere, in body and in time.

The attacker's probes of every URL and API operation are in test_double_blind_walks.py, the rules
attacked directly in test_double_blind_rules.py; the world and the probe are in
tests/labeling/double_blind_world.py and tests/labeling/probe.py.
"""

import io
import statistics
import time

import pytest
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from labeling.models import Mask
from tests.labeling.double_blind_world import NOWHERE, World
from tests.labeling.probe import API, BODY, exposed, leaks, raw

pytestmark = pytest.mark.django_db


# --- the attacker's own assignment -------------------------------------------------------------


def test_the_attackers_own_pages_api_and_images_hide_which_railcar_it_is(world, settings):
    client = APIClient()
    client.force_login(world.attacker)
    own = world.own.uid

    for path in ("/", "/annotate/", f"/annotate/{own}/", f"{API}/{own}/"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert not leaks(exposed(response), world.forbidden), path
    detail = client.get(f"{API}/{own}/").json()
    served = [frame["id"] for layer in detail["layers"] for frame in layer["frames"]]
    assert sorted(served) == sorted(str(f.uid) for f in world.own_frames)
    assert [m["id"] for m in detail["masks"]] == [str(world.own_mask.uid)]  # not Piet's or Quim's
    assert detail["exclusions"] == [] and detail["rating"] is None

    for frame_uid in served:
        response = client.get(f"{API}/{own}/frames/{frame_uid}/image/")
        assert response.status_code == 200
        assert not leaks(exposed(response), world.forbidden)
        for header in ("Last-Modified", "ETag", "Content-Location"):
            assert header not in response, f"{header} could date or name the file"
        assert response["Content-Disposition"] == "inline; filename=frame"
        image = Image.open(io.BytesIO(raw(response)))
        assert not image.getexif()
        assert not {"exif", "comment", "xmp", "XML:com.adobe.xmp", "photoshop"} & set(image.info)
        assert b"Exif" not in raw(response) and b"RC-" not in raw(response)
    # Neither an ineligible frame nor the stored file by its name.
    assert client.get(f"{API}/{own}/frames/{world.ineligible_frame.uid}/image/").status_code == 404
    for frame in world.own_frames:
        assert client.get(f"{settings.MEDIA_URL}{frame.file.name}").status_code == 404


# --- error messages and timing -----------------------------------------------------------------


def _attacker_client(world: World) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {world.token}")
    return client


def test_a_victims_id_and_an_id_from_nowhere_get_byte_identical_errors(world):
    client = _attacker_client(world)
    piet = world.victims["victim-piet on shared"]
    piet_mask = piet.masks.get()
    own, nowhere = world.own.uid, NOWHERE["uuid"]
    pairs = [
        ("get", f"{API}/{piet.uid}/", f"{API}/{nowhere}/"),
        ("post", f"{API}/{piet.uid}/rating/", f"{API}/{nowhere}/rating/"),
        ("post", f"{API}/{piet.uid}/release/", f"{API}/{nowhere}/release/"),
        # The attacker's own railcar: Piet's mask on it, and its ineligible frame.
        ("delete", f"{API}/{own}/masks/{piet_mask.uid}/", f"{API}/{own}/masks/{nowhere}/"),
        ("get", f"{API}/{own}/frames/{world.ineligible_frame.uid}/image/",
         f"{API}/{own}/frames/{nowhere}/image/"),
    ]  # fmt: skip
    for method, victim, baseline in pairs:
        a = getattr(client, method)(victim, BODY, format="json")
        b = getattr(client, method)(baseline, BODY, format="json")
        assert a.status_code == b.status_code == 404, victim
        assert (raw(a), dict(a.items())) == (raw(b), dict(b.items())), victim
    page = Client()
    page.force_login(world.attacker)
    a, b = page.get(f"/annotate/{piet.uid}/"), page.get(f"/annotate/{nowhere}/")
    assert a.status_code == b.status_code == 404 and raw(a) == raw(b)
    assert Mask.objects.filter(pk=piet_mask.pk).exists()


def test_conflicts_and_bad_input_reveal_nothing(world):
    client = _attacker_client(world)
    own, frame = world.own.uid, world.own_frames[0].uid
    bad_mask = {"rle": {"size": [1, 1], "counts": "zz"}, "prompts": {}, "engine": "manual"}

    bad = [
        client.post(f"{API}/{own}/rating/", {"contamination_pct": "x", "grade": "x"}),
        client.post(f"{API}/{own}/frames/{frame}/masks/", bad_mask, format="json"),
        client.put(f"{API}/{own}/frames/{frame}/exclusion/", {"code": "nope"}, format="json"),
    ]  # fmt: skip
    assert [r.status_code for r in bad] == [400, 400, 400]
    assert client.post(f"{API}/{own}/release/", {"reason": "cannot_judge"}).status_code == 204
    gone = [
        client.get(f"{API}/{own}/frames/{frame}/image/"),
        client.post(f"{API}/{own}/rating/", BODY, format="json"),
        client.put(f"{API}/{own}/frames/{frame}/exclusion/", BODY, format="json"),
        client.post(f"{API}/{own}/frames/{frame}/masks/", BODY, format="json"),
    ]
    assert [r.status_code for r in gone] == [409] * 4
    for response in bad + gone:
        assert not leaks(exposed(response), world.forbidden), raw(response)


def test_a_victims_id_takes_as_long_to_refuse_as_an_id_from_nowhere(world):
    client = _attacker_client(world)
    olga = world.victims["victim-olga on busy"]  # active, masks, on another railcar
    olga_frame = olga.railcar.frames.first().uid
    nowhere = NOWHERE["uuid"]
    paths = {
        "victim": f"{API}/{olga.uid}/",
        "nowhere": f"{API}/{nowhere}/",
        "victim image": f"{API}/{olga.uid}/frames/{olga_frame}/image/",
        "nowhere image": f"{API}/{nowhere}/frames/{nowhere}/image/",
    }
    times: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(45):
        # Interleaved, and in turns of order, so that load from elsewhere falls on both alike.
        for name, path in paths.items() if round_ % 2 else reversed(paths.items()):
            start = time.perf_counter()
            assert client.get(path).status_code == 404
            if round_ >= 5:  # warm-up
                times[name].append(time.perf_counter() - start)
    for victim, baseline in (("victim", "nowhere"), ("victim image", "nowhere image")):
        ratio = statistics.median(times[victim]) / statistics.median(times[baseline])
        assert 1 / 3 < ratio < 3, f"{victim}: {ratio:.2f}x the time of an id from nowhere"
