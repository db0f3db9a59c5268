"""Probing the app as the double-blind attacker: requests with other people's ids, and what may
not differ between a victim's id and an id that exists nowhere.
"""

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import numpy as np
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from labeling import rle as rle_codec
from labeling.models import Assignment, FrameExclusion, Mask, Railcar, Rating
from operations.models import Escalation, OperatorDecision
from tests.labeling.double_blind_world import NOWHERE, World, _role

API = "/api/v1/assignments"
METHODS = ("GET", "HEAD", "OPTIONS", "PUT", "PATCH", "POST", "DELETE")
DENIED = {401, 403, 404, 405}
LOGIN_PAGES = ("/accounts/login/", "/admin/login/")
# Whatever a write endpoint could want, valid, so that requests get past input validation.
BODY = {
    "contamination_pct": "55.5", "grade": "3A", "seconds_spent": 7, "code": "blur",
    "note": "attacker note", "reason": "other", "engine": "manual",
    "prompts": {"points": [[20, 20]], "labels": [1], "box": [8, 8, 40, 36]},
    "rle": rle_codec.encode(np.pad(np.ones((12, 12), bool), ((10, 26), (10, 42)))),  # 48 x 64
}  # fmt: skip
# No response field of an annotator's operation may carry one of these words ("_"-separated).
FORBIDDEN_FIELD_WORDS = {
    "real", "railcar", "line", "camera", "captured", "annotator", "annotators", "ratings",
    "consensus", "prediction", "predictions", "username", "source", "filename", "uncertainty",
}  # fmt: skip


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


def reply(response: Any) -> tuple[int, str, str, str]:
    """Status, content type, Location and body, read once (a streaming body reads only once)."""
    body = _CSRF.sub(r"\1*", raw(response).decode("latin-1"))
    return (
        response.status_code,
        response.get("Content-Type", ""),
        response.get("Location", ""),
        body,
    )


def answer(
    replied: tuple[int, str, str, str], sent: list[str], path: str
) -> tuple[int, str, str, str]:
    """What must not differ between a victim's id and an id from nowhere. The requested path is
    masked whole first (a redirect's `next=` repeats it): masking its ids one by one would also
    hit a short id ("38") inside a longer one (a uuid ending in "f538"). Both answers are masked
    with the same ids (the victim's and the one from nowhere), so a page's own digits (a
    viewport's "initial-scale=1" on a 403 page) read alike on both sides."""
    status, content_type, location, body = replied
    for whole in (path, quote(path, safe="/"), quote(path, safe="")):
        body, location = body.replace(whole, "{path}"), location.replace(whole, "{path}")
    for value in sorted(sent, key=len, reverse=True):
        # Whole ids only: a case id "1" must not be masked inside "<h1>".
        whole_id = re.compile(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])")
        body, location = whole_id.sub("{}", body), whole_id.sub("{}", location)
    return status, content_type, location, body


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
                baselines[base_path] = reply(call(client, method, base_path))
            masked = [*ids.values(), *nowhere.values()]
            got = answer(reply(response), masked, path)
            expected = answer(baselines[base_path], masked, base_path)
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
        "operator decisions": list(OperatorDecision.objects.order_by("pk").values()),
        "escalations": list(Escalation.objects.order_by("pk").values()),
    }
