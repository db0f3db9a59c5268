"""Double-blind, tested the way an attacker would test it.

The attacker is an annotator who holds one assignment on a railcar that two other annotators have
already rated. They try every URL of the app (the URL configuration, walked) and of the API (the
OpenAPI schema, walked), with every method, logged in and with a token, putting other people's
ids into every path parameter: assignments, frames, masks, railcars, layers, users, audit events.
Nothing that comes back may contain what double-blind hides: a railcar's plant id, line, camera or
capture time, a plant file name, another annotator's name, pseudonym, assignment, mask, note or
rating. A victim's id must answer exactly like an id that exists nowhere, in body and in time.

Then the rules are attacked directly: a fourth rating by a direct POST, double submits, a late
rating racing its lease's expiry, and many annotators at once on PostgreSQL.
"""

import hashlib
import io
import json
import queue
import re
import statistics
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from django.core.files.base import ContentFile
from django.db.models import Count
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RoutePattern
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling import annotation, pool
from labeling import rle as rle_codec
from labeling.ingest import ingest_unloading
from labeling.manifest import UnloadingManifestSerializer
from labeling.models import Assignment, Frame, FrameExclusion, Layer, Mask, Railcar, Rating
from scrapannot.models import AuditEvent
from scrapannot.roles import Role
from tests.concurrency import run_at_once
from tests.labeling.factories import annotators, pool_railcar

pytestmark = pytest.mark.django_db

API = "/api/v1/assignments"
METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE")
DENIED = {401, 403, 404, 405}
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")
# Ids that exist nowhere: what every victim's id must be indistinguishable from.
NOWHERE = {"uuid": "5f0c3a52-9d1e-4b7a-8c2f-0e6d4b1a9c77", "int": "987654321", "str": "nowhere"}
# Whatever a write endpoint could want, valid, so that requests get past input validation.
BODY = {
    "contamination_pct": "55.5", "grade": "3A", "seconds_spent": 7, "code": "blur",
    "note": "attacker note", "reason": "attacker reason", "engine": "manual",
    "prompts": {"points": [[20, 20]], "labels": [1], "box": [8, 8, 40, 36]},
    "rle": rle_codec.encode(np.pad(np.ones((12, 12), bool), ((10, 26), (10, 42)))),  # 48 x 64
}  # fmt: skip
# No response field of an annotator's operation may carry one of these words ("_"-separated).
FORBIDDEN_FIELD_WORDS = {
    "real", "railcar", "line", "camera", "captured", "annotator", "annotators", "ratings",
    "consensus", "prediction", "predictions", "username", "source", "filename", "uncertainty",
}  # fmt: skip
# Above 59, so that no seconds-and-fraction of a timestamp ("…:73.9…") can look like them.
VICTIM_RATINGS = [Decimal(v) for v in ("73.9", "86.1", "67.4", "91.7", "78.2")]


# --- the world ---------------------------------------------------------------------------------


@dataclass
class World:
    attacker: User
    token: str
    own: Assignment
    own_frames: list[Frame]
    own_mask: Mask
    ineligible_frame: Frame
    admin: User
    victims: dict[str, Assignment]
    forbidden: dict[str, str] = field(default_factory=dict)  # needle -> what it would reveal
    ids: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> {id: "sort of id"}
    contexts: list[dict[str, str]] = field(default_factory=list)  # one victim's ids together

    def own_id(self, name: str, kind: str) -> str:
        if kind == "int":
            return str(self.own.pk)
        role = _role(name)
        return str({"frame": self.own_frames[0], "mask": self.own_mask}.get(role, self.own).uid)


def _role(param: str) -> str:
    return "frame" if "frame" in param else "mask" if "mask" in param else "assignment"


def _person(name: str, *roles: Role) -> User:
    user = User.objects.create_user(username=name, password=f"{name}-pass-1")
    for role in roles:
        user.groups.add(Group.objects.get_or_create(name=role.value)[0])
    Token.objects.create(user=user)
    return user


def _jpeg_with_metadata(*, seed: int, real_id: str, camera: str, taken: datetime) -> bytes:
    exif = Image.Exif()
    exif[0x010E] = f"railcar {real_id}"  # ImageDescription
    exif[0x0110] = camera  # Model
    exif[0x0132] = f"{taken:%Y:%m:%d %H:%M:%S}"  # DateTime
    pixels = np.random.default_rng(seed).integers(0, 255, size=(48, 64, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(
        out, format="JPEG", exif=exif.tobytes(), comment=f"{real_id} {camera}"
    )
    return out.getvalue()


def _ingested_railcar(*, real_id: str, line: str, camera: str, start: datetime) -> Railcar:
    """Through the real ingest, every frame's EXIF and JPEG comment naming the railcar; then into
    the pool by hand (quality checks are not what is tested here), its last frame ineligible."""
    entries, sources = [], {}
    for i in range(5):
        taken = start + timedelta(seconds=7 * i)
        name = f"{real_id}_{taken:%Y-%m-%d_%H%M%S}.jpg"
        data = _jpeg_with_metadata(seed=900 + i, real_id=real_id, camera=camera, taken=taken)
        sources[name] = ContentFile(data, name=name)
        entries.append(
            {"file": name, "sha256": hashlib.sha256(data).hexdigest(),
             "captured_at": taken.isoformat(), "layer": 1 if i < 2 else 2}
        )  # fmt: skip
    manifest = UnloadingManifestSerializer(
        data={"railcar": real_id, "line": line, "camera": camera, "frames": entries}
    )
    manifest.is_valid(raise_exception=True)
    railcar = ingest_unloading(manifest=manifest.validated_data, sources=sources).railcar
    railcar.frames.update(quality=Frame.Quality.ELIGIBLE)
    railcar.frames.filter(index=4).update(quality=Frame.Quality.INELIGIBLE)
    for layer in railcar.layers.all():
        layer.keyframe = layer.frames.order_by("index").first()
        layer.save(update_fields=["keyframe"])
    Railcar.objects.filter(pk=railcar.pk).update(
        status=Railcar.Status.IN_POOL, priority=2.0, raters_needed=3, open_slots=3
    )
    return railcar


def _disguise(railcar: Railcar, *, word: str, start: datetime) -> None:
    """Factory railcars share line "L2" and today's date: give each its own, findable ones."""
    Railcar.objects.filter(pk=railcar.pk).update(
        line=f"LINE-{word}", camera=f"CAM-{word}-TOP", unloading_started_at=start,
        unloading_ended_at=start + timedelta(minutes=9),
    )  # fmt: skip
    for i, frame in enumerate(railcar.frames.order_by("index")):
        Frame.objects.filter(pk=frame.pk).update(
            camera=f"CAM-{word}-TOP", captured_at=start + timedelta(seconds=11 * i)
        )


def _mask(assignment: Assignment, frame: Frame, *, corner: int, size: int) -> Mask:
    pixels = np.zeros((frame.height, frame.width), bool)
    pixels[corner : corner + size, corner + 1 : corner + 1 + size + corner % 5] = True
    rle = rle_codec.encode(pixels)
    return Mask.objects.create(
        assignment=assignment, frame=frame, rle=rle, engine="grabcut", area=rle_codec.area(rle),
        prompts={"points": [[corner + 2, corner + 2]], "labels": [1], "box": None},
    )  # fmt: skip


def _rate(assignment: Assignment, value: Decimal, grade: str) -> None:
    annotation.submit_rating(
        uid=assignment.uid, annotator=assignment.annotator, contamination_pct=value,
        grade=grade, seconds_spent=4711,
    )  # fmt: skip


def _moments(moment: datetime) -> list[str]:
    """How a capture time could be written out: ISO, EXIF, a date filter, epoch seconds."""
    m = moment.astimezone(UTC)
    return [
        f"{m:%Y-%m-%dT%H:%M}", f"{m:%Y-%m-%d %H:%M}", f"{m:%Y:%m:%d %H:%M}", f"{m:%Y-%m-%d}",
        f"{m:%B} {m.day}, {m.year}", str(int(m.timestamp())),
    ]  # fmt: skip


@pytest.fixture
def world() -> World:
    olga, piet, quim = (_person(f"victim-{n}", Role.ANNOTATOR) for n in ("olga", "piet", "quim"))
    attacker = _person("mallory-attacker", Role.ANNOTATOR)
    admin = _person("admin-sigrun", Role.ADMIN)
    _person("senior-rosalind", Role.SENIOR_INSPECTOR)
    _person("plant-ulf", Role.PLANT_SYSTEM)

    rated = pool_railcar(priority=3.0)
    shared = _ingested_railcar(
        real_id="RC-88123456", line="LINE-HARBOR", camera="CAM-HARBOR-TOP",
        start=datetime(2019, 3, 14, 7, 26, 53, tzinfo=UTC),
    )  # fmt: skip
    busy, untouched, attention = pool_railcar(priority=1.0), pool_railcar(), pool_railcar()
    Railcar.objects.filter(pk=attention.pk).update(status=Railcar.Status.NEEDS_ATTENTION)
    for k, (railcar, word) in enumerate(
        [(rated, "FJORD"), (busy, "KESTREL"), (untouched, "QUARTZ"), (attention, "TUNDRA")]
    ):
        _disguise(railcar, word=word, start=datetime(2019, 5, 2 + 3 * k, 5, 17 + k, 41, tzinfo=UTC))

    # All three victims rate `rated`, with masks, an exclusion note and their own values.
    victims = {
        f"{w.username} on rated": pool.next_assignment(annotator=w) for w in (olga, piet, quim)
    }
    for k, assignment in enumerate(victims.values()):
        frame = assignment.railcar.frames.order_by("index").first()
        _mask(assignment, frame, corner=3 + k, size=9 + k)
        if k == 0:
            annotation.exclude_frame(
                uid=assignment.uid, annotator=olga, frame_uid=frame.uid, code="dust_smoke",
                note="olga-note-smoke-over-layer-one",
            )  # fmt: skip
        _rate(assignment, VICTIM_RATINGS[k], ["3A1", "3AH", "cast iron"][k])
    # Two of them rate the shared railcar: their masks and notes lie on the attacker's frames.
    for k, who in ((3, piet), (4, quim)):
        victims[f"{who.username} on shared"] = assignment = pool.next_assignment(annotator=who)
        assert assignment.railcar_id == shared.pk
        _mask(assignment, shared.frames.get(index=0), corner=4 * k + 8, size=11)
        annotation.exclude_frame(
            uid=assignment.uid, annotator=who, frame_uid=shared.frames.get(index=1).uid,
            code="blur", note=f"{who.username}-note-blurry",
        )  # fmt: skip
        _rate(assignment, VICTIM_RATINGS[k], "3A")

    own = pool.next_assignment(annotator=attacker)
    assert own.railcar_id == shared.pk
    own_frames = list(shared.frames.filter(quality="eligible").order_by("index"))
    own_mask = _mask(own, own_frames[0], corner=5, size=13)

    # Olga holds `busy`; Quim released it; Piet's lease on it expired.
    victims["victim-olga on busy"] = held = pool.next_assignment(annotator=olga)
    _mask(held, busy.frames.order_by("index").first(), corner=7, size=8)
    victims["victim-quim released"] = released = pool.next_assignment(annotator=quim)
    pool.release_assignment(uid=released.uid, annotator=quim, reason="quim-reason-bad-angle")
    victims["victim-piet expired"] = expired = pool.next_assignment(annotator=piet)
    Assignment.objects.filter(pk=expired.pk).update(lease_expires_at=timezone.now())
    pool.expire_leases()
    assert {a.railcar_id for a in (held, released, expired)} == {busy.pk}

    world = World(
        attacker=attacker, token=attacker.auth_token.key, own=own, own_frames=own_frames,
        own_mask=own_mask, ineligible_frame=shared.frames.get(index=4), admin=admin,
        victims={k: Assignment.objects.get(pk=v.pk) for k, v in victims.items()},
    )  # fmt: skip
    _collect_secrets(world)
    _collect_ids(world)
    return world


def _collect_secrets(world: World) -> None:
    forbidden = world.forbidden
    for railcar in Railcar.objects.all():
        forbidden |= {
            railcar.real_id: "a plant railcar id", railcar.line: "a line",
            railcar.camera: "a camera", str(railcar.uid): "a railcar uid",
            railcar.fingerprint: "a railcar fingerprint",
        }  # fmt: skip
        for moment in (railcar.unloading_started_at, railcar.unloading_ended_at):
            forbidden |= dict.fromkeys(_moments(moment), "an unloading time")
    for frame in Frame.objects.all():
        forbidden |= {
            frame.source_name: "a plant file name", frame.camera: "a camera",
            frame.declared_sha256: "the plant file's checksum", frame.file.name: "a stored name",
        }  # fmt: skip
        assert frame.file, "every frame has a file: its stored name is one of the secrets"
        forbidden |= dict.fromkeys(_moments(frame.captured_at), "a capture time")
    forbidden |= {str(uid): "a layer uid" for uid in Layer.objects.values_list("uid", flat=True)}
    others = Assignment.objects.exclude(annotator=world.attacker)
    for a in others:
        forbidden |= {str(a.uid): "another's assignment", a.pseudonym: "another's pseudonym"}
        if a.release_reason:
            forbidden[a.release_reason] = "another's release reason"
    for mask in Mask.objects.filter(assignment__in=others):
        forbidden[str(mask.uid)] = "another's mask"
        if len(mask.rle["counts"]) >= 12:  # shorter ones could turn up anywhere by chance
            forbidden[mask.rle["counts"]] = "another's mask"
    for note in FrameExclusion.objects.filter(assignment__in=others).values_list("note", flat=True):
        forbidden[note] = "another's exclusion note"
    for value in Rating.objects.values_list("contamination_pct", flat=True):
        forbidden |= {str(value): "another's rating", str(value).replace(".", ","): "a rating"}
    for user in User.objects.exclude(pk=world.attacker.pk):
        forbidden[user.username] = "another's name"
    forbidden |= dict.fromkeys(
        Token.objects.exclude(user=world.attacker).values_list("key", flat=True), "a token"
    )
    forbidden |= dict.fromkeys(AuditEvent.objects.values_list("hash", flat=True), "audit hash")


def _collect_ids(world: World) -> None:
    """Other people's ids by kind, each with the sort of thing it is (its first word)."""
    uuids = {str(a.uid): f"assignment of {k}" for k, a in world.victims.items()}
    for railcar in Railcar.objects.all():
        uuids[str(railcar.uid)] = f"railcar {railcar.real_id}"
        uuids[str(railcar.layers.first().uid)] = f"layer of {railcar.real_id}"
        if railcar.pk != world.own.railcar_id:
            uuids[str(railcar.frames.first().uid)] = f"frame of {railcar.real_id}"
    uuids[str(world.ineligible_frame.uid)] = "ineligible-frame of the attacker's own railcar"
    others = Mask.objects.exclude(assignment__annotator=world.attacker)
    uuids |= {str(m.uid): f"mask of {m.assignment.annotator}" for m in others}
    ints = {str(r.pk): f"railcar-pk of {r.real_id}" for r in Railcar.objects.all()}
    ints |= {str(a.pk): f"assignment-pk of {k}" for k, a in world.victims.items()}
    ints |= {str(pk): "rating-pk" for pk in Rating.objects.values_list("pk", flat=True)}
    ints |= {str(u.pk): f"user-pk of {u}" for u in User.objects.exclude(pk=world.attacker.pk)}
    ints |= {str(e.pk): f"audit-event {e.action}" for e in AuditEvent.objects.all()}
    tokens = {t.key: f"token of {t.user}" for t in Token.objects.exclude(user=world.attacker)}
    world.ids = {"uuid": uuids, "int": ints, "str": ints | uuids | tokens}
    for assignment in Assignment.objects.exclude(annotator=world.attacker):
        mask = assignment.masks.first()
        world.contexts.append({
            "assignment": str(assignment.uid),
            "frame": str(assignment.railcar.frames.filter(quality="eligible").first().uid),
            "mask": str(mask.uid) if mask else NOWHERE["uuid"],
        })  # fmt: skip


# --- probing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A URL with `{name}` holes, each of a kind: uuid, int or str."""

    template: str
    kinds: dict[str, str]

    @property
    def outside_drf(self) -> bool:
        return not self.template.startswith("/api/") or self.template.startswith("/api/v1/annotate")


def raw(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content)
    return response.content


def exposed(response: Any) -> str:
    """All an attacker reads in a response: headers (Location, Content-Disposition, ETag...),
    cookies and body."""
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    cookies = "\n".join(f"{k}={m.value}" for k, m in response.cookies.items())
    return f"{headers}\n{cookies}\n{raw(response).decode('latin-1')}"


def leaks(text: str, forbidden: dict[str, str], *, sent: Iterable[str] = ()) -> list[str]:
    """The forbidden strings in `text`, once what the attacker sent is taken out: an id echoed in
    a login redirect's `next` is no news to them."""
    for value in sorted(sent, key=len, reverse=True):
        text = text.replace(value, "{}").replace(quote(value, safe=""), "{}")
    return [f"{needle!r} ({what})" for needle, what in forbidden.items() if needle in text]


_CSRF = re.compile(r'(csrfmiddlewaretoken" value="|csrftoken=)[^";\s]+')


def answer(response: Any, sent: list[str], path: str) -> tuple[int, str, str, str]:
    """What must not differ between a victim's id and an id from nowhere. The requested path is
    masked whole first (a redirect's `next=` repeats it): masking its ids one by one would also
    hit a short id ("38") inside a longer one (a uuid ending in "f538")."""
    body = _CSRF.sub(r"\1*", raw(response).decode("latin-1"))
    location = response.get("Location", "")
    for whole in (path, quote(path, safe="/"), quote(path, safe="")):
        body, location = body.replace(whole, "{path}"), location.replace(whole, "{path}")
    for value in sorted(sent, key=len, reverse=True):
        # Whole ids only: a case id "1" must not be masked inside "<h1>".
        whole_id = re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")
        body, location = whole_id.sub("{}", body), whole_id.sub("{}", location)
    return response.status_code, response.get("Content-Type", ""), location, body


def call(client: Client, method: str, path: str) -> Any:
    if method in ("POST", "PUT", "PATCH"):
        return client.generic(method, path, json.dumps(BODY), content_type="application/json")
    return client.generic(method, path)


@dataclass
class Probe:
    """Walks routes as the attacker; collects every problem rather than stopping at the first."""

    world: World
    problems: list[str] = field(default_factory=list)
    requests: int = 0
    own_status: dict[tuple[str, str], int] = field(default_factory=dict)

    def walk(self, routes: list[Route], *, methods: Callable[[Route], set[str]]) -> None:
        session, token = Client(), APIClient()
        session.force_login(self.world.attacker)
        token.credentials(HTTP_AUTHORIZATION=f"Token {self.world.token}")
        # Rating or releasing their own assignment ends it: those go last.
        routes = sorted(routes, key=lambda r: ("rating/" in r.template, "release/" in r.template))
        for method in METHODS:
            for route in (r for r in routes if method in methods(r)):
                self._probe(route, method, "session", session)
                # Outside DRF a token logs nobody in: the same anonymous answer for every id.
                if not route.outside_drf or method in ("GET", "POST"):
                    self._probe(route, method, "token", token)

    def _combos(self, route: Route, *, sample: bool) -> Iterator[tuple[dict, dict | None, str]]:
        """(ids, the same with the victim's id swapped for one from nowhere, what it is). The
        attacker's own ids go last, since their requests may change their own assignment."""
        own = {name: self.world.own_id(name, kind) for name, kind in route.kinds.items()}
        for name, kind in route.kinds.items():
            ids = self.world.ids[kind].items()
            if sample:  # one of each sort
                ids = {what.split()[0]: (v, what) for v, what in ids}.values()
            for value, what in ids:
                yield own | {name: value}, own | {name: NOWHERE[kind]}, f"{name} = {what}"
        # A victim's ids together, where every hole takes a uuid (an int hole would not even
        # resolve with one, which says nothing about the victim).
        if len(route.kinds) > 1 and set(route.kinds.values()) == {"uuid"}:
            for context in self.world.contexts:
                ids = {name: context[_role(name)] for name in route.kinds}
                yield ids, {n: NOWHERE[k] for n, k in route.kinds.items()}, "one victim's ids"
        yield own, None, "the attacker's own ids"

    def _probe(self, route: Route, method: str, who: str, client: Client) -> None:
        sample = route.outside_drf and (route.template.startswith("/admin/") or who == "token")
        baselines: dict[str, tuple] = {}
        for ids, nowhere, what in self._combos(route, sample=sample):
            path = route.template.format(**ids)
            response = call(client, method, path)
            self.requests += 1
            where = f"{method} {path} [{who}; {what}]"
            if response.status_code >= 500:
                self.problems.append(f"{where}: {response.status_code}")
            if found := leaks(exposed(response), self.world.forbidden, sent=ids.values()):
                self.problems.append(f"{where}: LEAK {', '.join(found)}")
            if nowhere is None:
                self.own_status[(route.template, method)] = response.status_code
                baselines.clear()
                continue
            base_path = route.template.format(**nowhere)
            if base_path not in baselines:
                base = call(client, method, base_path)
                baselines[base_path] = answer(base, list(nowhere.values()), base_path)
            got, expected = answer(response, list(ids.values()), path), baselines[base_path]
            if got != expected:
                self.problems.append(
                    f"{where}: answers {got[0]} {got[3][:200]!r}; an id from nowhere gets "
                    f"{expected[0]} {expected[3][:200]!r}"
                )
            elif not (
                got[0] in DENIED | {400, 409} or method == "OPTIONS"
                or (got[0] == 302 and got[2].startswith(LOGIN_PAGES))
            ):  # fmt: skip
                self.problems.append(f"{where}: {got[0]} for a victim's id")

    def assert_clean(self) -> None:
        report = "\n".join(self.problems[:40])
        assert not self.problems, f"{len(self.problems)} problems, the first ones:\n{report}"


def _snapshot_of_others(world: World) -> dict[str, list]:
    others = Assignment.objects.exclude(annotator=world.attacker)
    return {
        "assignments": list(others.order_by("pk").values()),
        "ratings": list(Rating.objects.filter(assignment__in=others).order_by("pk").values()),
        "masks": list(Mask.objects.filter(assignment__in=others).order_by("pk").values()),
        "exclusions": list(
            FrameExclusion.objects.filter(assignment__in=others).order_by("pk").values()
        ),
        "railcars": list(Railcar.objects.exclude(pk=world.own.railcar_id).order_by("pk").values()),
        "users": list(User.objects.exclude(pk=world.attacker.pk).order_by("pk").values()),
    }


# --- walking the URL configuration -------------------------------------------------------------

_ROUTE_HOLE = re.compile(r"<(?:[^>:]+:)?(?P<name>[^>]+)>")
_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>(?P<body>(?:[^()\\]|\\.)*)\)")
# Logging out would end the walk's session: both are checked on their own.
LOG_OUTS = {"logout", "admin:logout"}


def _pieces(pattern: Any, kinds: dict[str, str]) -> list[str]:
    """One pattern as templates; a regex alternation of words (admin app labels) gives several."""
    text = str(pattern)
    if isinstance(pattern, RoutePattern):
        for name, converter in pattern.converters.items():
            kinds[name] = (
                "uuid" if isinstance(converter, UUIDConverter)
                else "int" if isinstance(converter, IntConverter) else "str"
            )  # fmt: skip
        return [_ROUTE_HOLE.sub(r"{\g<name>}", text)]
    templates = [text.removeprefix("^").removesuffix("$").removesuffix(r"\Z")]
    for group in _GROUP.finditer(templates[0]):
        if re.fullmatch(r"\w+(\|\w+)*", group["body"]):
            templates = [
                t.replace(group[0], w) for t in templates for w in group["body"].split("|")
            ]
        else:
            kinds[group["name"]] = "str"
            templates = [t.replace(group[0], "{" + group["name"] + "}") for t in templates]
    return [t.replace("\\", "") for t in templates]


def url_routes() -> list[Route]:
    """Every URL pattern of the project, included ones too, as routes."""
    routes: list[Route] = []

    def walk(resolver: URLResolver, prefix: str, kinds: dict[str, str], namespace: str) -> None:
        for entry in resolver.url_patterns:
            entry_kinds = dict(kinds)
            for piece in _pieces(entry.pattern, entry_kinds):
                if isinstance(entry, URLResolver):
                    inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
                    walk(entry, prefix + piece, entry_kinds, inner)
                elif isinstance(entry, URLPattern) and f"{namespace}{entry.name}" not in LOG_OUTS:
                    routes.append(Route("/" + prefix + piece, entry_kinds))

    walk(get_resolver(), "", {}, "")
    return routes


def test_the_walk_reaches_every_kind_of_url():
    routes = url_routes()

    assert {
        "/", "/admin/", "/admin/labeling/", "/admin/labeling/railcar/{object_id}/change/",
        "/admin/{url}", "/audit/", "/policies/", "/annotate/", "/annotate/{uid}/",
        "/ops/frames/{uid}/thumbnail.jpg", "/api/v1/schema/", f"{API}/{{uid}}/rating/",
        f"{API}/{{uid}}/frames/{{frame_uid}}/image/", "/healthz",
    } <= {r.template for r in routes}  # fmt: skip
    for route in routes:
        resolve(route.template.format(**{n: NOWHERE[k] for n, k in route.kinds.items()}))


def test_every_url_of_the_app_with_other_peoples_ids_reveals_nothing(world):
    before = _snapshot_of_others(world)
    probe = Probe(world)

    probe.walk(url_routes(), methods=lambda route: set(METHODS))

    probe.assert_clean()
    assert _snapshot_of_others(world) == before, "a request with a victim's id changed their data"
    assert probe.requests > 2000


def test_logging_out_reveals_nothing(world):
    for path in ("/accounts/logout/", "/admin/logout/"):
        client = Client()
        client.force_login(world.attacker)
        response = client.post(path)
        assert response.status_code in (200, 302)
        assert not leaks(exposed(response), world.forbidden)


# --- walking the OpenAPI schema ----------------------------------------------------------------


def _field_names(schema: dict[str, Any], components: dict[str, Any], seen: set[str]) -> set[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        seen_before = name in seen
        seen.add(name)
        return set() if seen_before else _field_names(components[name], components, seen)
    properties = schema.get("properties", {})
    children = [
        *properties.values(),
        *(s for k in ("allOf", "oneOf", "anyOf") for s in schema.get(k, [])),
    ]
    children += [
        v
        for k, v in schema.items()
        if k in ("items", "additionalProperties") and isinstance(v, dict)
    ]
    return set(properties).union(*(_field_names(c, components, seen) for c in children))


def _path_kind(parameter: dict[str, Any]) -> str:
    schema = parameter["schema"]
    if schema.get("format") == "uuid":
        return "uuid"
    return "int" if schema.get("type") == "integer" else "str"


def test_every_api_operation_with_other_peoples_ids_reveals_nothing(world):
    admin = Client()
    admin.force_login(world.admin)
    schema = json.loads(raw(admin.get("/api/v1/schema/?format=json")))
    routes, methods = [], {}
    for path, item in schema["paths"].items():
        operations = {m.upper(): op for m, op in item.items() if m.upper() in METHODS}
        parameters = [p for op in operations.values() for p in op.get("parameters", [])]
        route = Route(path, {p["name"]: _path_kind(p) for p in parameters if p["in"] == "path"})
        routes.append(route)
        methods[path] = set(operations)
    assert len(routes) >= 8 and f"{API}/{{uid}}/rating/" in methods
    before = _snapshot_of_others(world)
    probe = Probe(world)

    probe.walk(routes, methods=lambda route: methods[route.template])

    probe.assert_clean()
    assert _snapshot_of_others(world) == before
    # What an annotator reaches must not even have a field for what double-blind hides.
    components = schema.get("components", {}).get("schemas", {})
    reachable = [key for key, status in probe.own_status.items() if status not in (401, 403)]
    assert (f"{API}/{{uid}}/", "GET") in reachable
    for template, method in reachable:
        for response in schema["paths"][template][method.lower()].get("responses", {}).values():
            for content in response.get("content", {}).values():
                names = _field_names(content.get("schema", {}), components, set())
                bad = {n for n in names if set(n.lower().split("_")) & FORBIDDEN_FIELD_WORDS}
                assert not bad, f"{method} {template} answers with fields {bad}"


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
    assert client.post(f"{API}/{own}/release/", {"reason": "done"}).status_code == 204
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


# --- breaking the rules by direct API calls ----------------------------------------------------


def _client_of(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _rating(value: str = "12.5", grade: str = "3A") -> dict[str, Any]:
    return {"contamination_pct": value, "grade": grade, "seconds_spent": 30}


def test_a_fourth_annotator_cannot_rate_someone_elses_assignment_by_a_direct_post():
    pool_railcar(raters=3, with_files=False)
    a, b, c, d = annotators(4)
    held = [_client_of(u).post(f"{API}/next/").json()["id"] for u in (a, b, c)]

    for uid in held:
        assert _client_of(d).post(f"{API}/{uid}/rating/", _rating()).status_code == 404
    assert _client_of(d).post(f"{API}/next/").status_code == 204

    assert not Rating.objects.exists()
    assert set(Assignment.objects.values_list("status", flat=True)) == {"active"}


def test_submitting_again_returns_the_first_rating_unchanged():
    pool_railcar(raters=3, with_files=False)
    (a,) = annotators(1)
    client = _client_of(a)
    uid = client.post(f"{API}/next/").json()["id"]

    first = client.post(f"{API}/{uid}/rating/", _rating("12.5", "3A"))
    again = client.post(f"{API}/{uid}/rating/", _rating("99.0", "cast iron"))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json() == {"contamination_pct": "12.5", "grade": "3A"}
    assert Rating.objects.get().contamination_pct == Decimal("12.5")


def test_after_three_ratings_a_fourth_and_fifth_annotator_cannot_add_a_rating():
    full = pool_railcar(raters=3, priority=1.0, with_files=False)
    other = pool_railcar(raters=3, with_files=False)
    people = annotators(5)
    uids = []
    for person in people[:3]:
        client = _client_of(person)
        uids.append(client.post(f"{API}/next/").json()["id"])
        assert client.post(f"{API}/{uids[-1]}/rating/", _rating()).status_code == 201

    for late in people[3:]:
        client = _client_of(late)
        assert Assignment.objects.get(uid=client.post(f"{API}/next/").json()["id"]).railcar == other
        for uid in uids:
            assert client.post(f"{API}/{uid}/rating/", _rating()).status_code == 404

    full.refresh_from_db()
    assert full.status == Railcar.Status.RATED
    assert full.ratings.count() == full.ratings.values("annotator").distinct().count() == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submits_record_one_rating(on_postgresql):
    pool_railcar(raters=3, with_files=False)
    (a,) = annotators(1)
    uid = _client_of(a).post(f"{API}/next/").json()["id"]
    values = queue.SimpleQueue()
    for k in range(8):
        values.put(f"{10 + k}.5")

    def submit() -> tuple[int, dict]:
        response = _client_of(a).post(f"{API}/{uid}/rating/", _rating(values.get_nowait()))
        return response.status_code, response.json()

    got = run_at_once(submit, threads=8)

    assert sorted(status for status, _ in got) == [200] * 7 + [201]
    stored = Rating.objects.get()
    assert {body["contamination_pct"] for _, body in got} == {str(stored.contamination_pct)}


@pytest.mark.django_db(transaction=True)
def test_a_late_rating_racing_its_lease_expiry_never_makes_a_fourth(on_postgresql):
    railcar = pool_railcar(raters=3, with_files=False)
    late, fresh = annotators(3, prefix="late"), annotators(3, prefix="fresh")
    held = {u.pk: _client_of(u).post(f"{API}/next/").json()["id"] for u in late}
    Assignment.objects.update(lease_expires_at=timezone.now())
    work = queue.SimpleQueue()
    for user in late + fresh:
        work.put(user)

    def act() -> int:
        user = work.get_nowait()
        client = _client_of(user)
        if user.pk not in held:  # a fresh annotator: take an expired slot, then rate it
            response = client.post(f"{API}/next/")
            if response.status_code != 200:
                return response.status_code
            held[user.pk] = response.json()["id"]
        return client.post(f"{API}/{held[user.pk]}/rating/", _rating()).status_code

    statuses = run_at_once(act, threads=6)

    assert set(statuses) <= {201, 204, 409}
    ratings = Rating.objects.filter(railcar=railcar)
    assert ratings.count() == statuses.count(201) <= 3
    assert ratings.values("annotator").distinct().count() == ratings.count()
    holding = Assignment.objects.filter(railcar=railcar, status__in=Assignment.HOLDING)
    assert holding.values("slot").distinct().count() == holding.count() <= 3
    railcar.refresh_from_db()
    assert railcar.open_slots == 3 - holding.count()


@pytest.mark.django_db(transaction=True)
def test_many_annotators_asking_for_next_through_the_api_at_once_never_over_assign(on_postgresql):
    railcars = [pool_railcar(raters=3, with_files=False) for _ in range(6)]
    people = queue.SimpleQueue()
    for person in annotators(32):
        people.put(person)

    got = run_at_once(lambda: _client_of(people.get_nowait()).post(f"{API}/next/"), threads=32)

    assert sorted(r.status_code for r in got) == [200] * 18 + [204] * 14
    assert len({r.json()["pseudonym"] for r in got if r.status_code == 200}) == 18
    for railcar in railcars:
        assignments = Assignment.objects.filter(railcar=railcar)
        assert assignments.values("annotator").distinct().count() == assignments.count() == 3
        assert sorted(assignments.values_list("slot", flat=True)) == [1, 2, 3]


@pytest.mark.django_db(transaction=True)
def test_many_annotators_looping_next_and_rate_at_once_never_break_the_rules(on_postgresql):
    railcars = [pool_railcar(raters=3, with_files=False) for _ in range(10)]
    people = queue.SimpleQueue()
    for person in annotators(32):
        people.put(person)

    def next_and_rate_until_no_work() -> list[int]:
        client, statuses = _client_of(people.get_nowait()), []
        while (response := client.post(f"{API}/next/")).status_code == 200:
            rated = client.post(f"{API}/{response.json()['id']}/rating/", _rating())
            statuses += [200, rated.status_code]
        return [*statuses, response.status_code]

    got = run_at_once(next_and_rate_until_no_work, threads=32)

    assert {status for statuses in got for status in statuses} <= {200, 201, 204}
    assert sum(statuses.count(201) for statuses in got) == 3 * len(railcars)
    per_railcar = Rating.objects.values("railcar").annotate(n=Count("id"))
    assert sorted(r["n"] for r in per_railcar) == [3] * len(railcars)
    assert not Rating.objects.values("railcar", "annotator").annotate(n=Count("id")).filter(n__gt=1)
    # Every railcar closed once its third rating was in, then aggregated (on that commit).
    assert Railcar.objects.filter(
        status__in=["labeled", "in_adjudication"], open_slots=0
    ).count() == len(railcars)
