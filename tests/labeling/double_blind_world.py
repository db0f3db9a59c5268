"""The world a double-blind attacker finds: an annotator holding one assignment on a railcar that
two other annotators have already rated, victims on other railcars, and every secret and every
other person's id collected, for the probes of tests/labeling/probe.py to look for.
"""

import hashlib
import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from PIL import Image
from rest_framework.authtoken.models import Token

from labeling import annotation, pool
from labeling import lines as line_access
from labeling import rle as rle_codec
from labeling.ingest import ingest_unloading
from labeling.manifest import UnloadingManifestSerializer
from labeling.models import Assignment, Frame, FrameExclusion, Layer, Line, Mask, Railcar, Rating
from operations.models import Escalation, LiveEstimate, OperatorDecision
from scrapannot import audit
from scrapannot.models import AuditEvent
from scrapannot.roles import Role
from tests.conftest import user_with_roles
from tests.labeling.factories import pool_railcar

# Ids that exist nowhere: what every victim's id must be indistinguishable from.
NOWHERE = {"uuid": "5f0c3a52-9d1e-4b7a-8c2f-0e6d4b1a9c77", "int": "987654321", "str": "nowhere"}
# Above 59, so that no seconds-and-fraction of a timestamp ("…:73.9…") can look like them.
VICTIM_RATINGS = [Decimal(v) for v in ("73.9", "86.1", "67.4", "91.7", "78.2")]
# The operator application's secrets about the attacker's own railcar: the model's live estimate
# (contamination, confidence), an operator's amendment and its note.
ESTIMATE_PCT, ESTIMATE_CONFIDENCE, AMENDED_PCT = 69.35, 0.3719, 83.65
OPERATOR_NOTE = "operator-note-plastic-on-top"


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
    user = user_with_roles(name, *roles)
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


def attack_world() -> World:
    """Built through the real ingest, pool and annotation functions; see the module docstring."""
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

    _operate(shared, rated)

    world = World(
        attacker=attacker, token=attacker.auth_token.key, own=own, own_frames=own_frames,
        own_mask=own_mask, ineligible_frame=shared.frames.get(index=4), admin=admin,
        victims={k: Assignment.objects.get(pk=v.pk) for k, v in victims.items()},
    )  # fmt: skip
    _collect_secrets(world)
    _collect_ids(world)
    return world


def _operate(*railcars: Railcar) -> None:
    """What the operator application knows of these railcars: live estimates, an operator's
    amendment on the first (the attacker's own railcar) and an escalation."""
    from tests.mlloop.version_factories import model_version

    operator = _person("operator-ilse", Role.OPERATOR)
    line_access.grant(
        actor=None, user=operator, line=Line.objects.get_or_create(name=railcars[0].line)[0],
        permission=line_access.OPERATE_LINE,
    )  # fmt: skip
    model = model_version(1)
    for railcar in railcars:
        estimate = LiveEstimate.objects.create(
            railcar=railcar, model_version=model, layers_scored=2, contamination_pct=ESTIMATE_PCT,
            grade="3AH", grade_probs={"3AH": 0.61, "3A": 0.39}, confidence=ESTIMATE_CONFIDENCE,
            expected_error_pct=0.77, quality_flags={"haze": 1},
            per_layer=[{"layer": 1, "attention": 0.6437, "contamination_pct": ESTIMATE_PCT}],
        )  # fmt: skip
    estimate = LiveEstimate.objects.get(railcar=railcars[0])
    decision = OperatorDecision.objects.create(
        railcar=railcars[0], estimate=estimate, operator=operator, action="amend",
        contamination_pct=AMENDED_PCT, grade="cast iron", rationale_code="sample_analysis",
        note=OPERATOR_NOTE,
    )  # fmt: skip
    Escalation.objects.create(
        railcar=railcars[0], route="pool", estimate=estimate, decision=decision,
        reasons=[{"rule": "confidence_below", "value": ESTIMATE_CONFIDENCE, "threshold": 0.5}],
    )  # fmt: skip


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
    for pct in (ESTIMATE_PCT, AMENDED_PCT):
        forbidden |= {
            str(pct): "a live estimate or an amendment",
            str(pct).replace(".", ","): "a value",
        }
    forbidden |= {
        str(ESTIMATE_CONFIDENCE): "the model's confidence", "0.6437": "an attention weight",
        OPERATOR_NOTE: "an operator's note",
    }  # fmt: skip
    for user in User.objects.exclude(pk=world.attacker.pk):
        forbidden[user.username] = "another's name"
    forbidden |= dict.fromkeys(
        Token.objects.exclude(user=world.attacker).values_list("key", flat=True), "a token"
    )
    audit.seal_pending()  # the sequencer seals within seconds: the hashes exist by then
    forbidden |= dict.fromkeys(
        AuditEvent.objects.filter(hash__isnull=False).values_list("hash", flat=True), "audit hash"
    )


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
    ints |= {
        str(pk): "live-estimate-pk" for pk in LiveEstimate.objects.values_list("pk", flat=True)
    }
    ints |= {str(pk): "decision-pk" for pk in OperatorDecision.objects.values_list("pk", flat=True)}
    tokens = {t.key: f"token of {t.user}" for t in Token.objects.exclude(user=world.attacker)}
    world.ids = {"uuid": uuids, "int": ints, "str": ints | uuids | tokens}
    for assignment in Assignment.objects.exclude(annotator=world.attacker):
        mask = assignment.masks.first()
        world.contexts.append({
            "assignment": str(assignment.uid),
            "frame": str(assignment.railcar.frames.filter(quality="eligible").first().uid),
            "mask": str(mask.uid) if mask else NOWHERE["uuid"],
        })  # fmt: skip
