"""Double-blind, walked the way an attacker would walk it: every URL of the app (the URL
configuration, walked) and of the API (the OpenAPI schema, walked), with every method, logged in
and with a token, other people's ids in every path parameter. The world and the probe are in
tests/labeling/double_blind_world.py and tests/labeling/probe.py.
"""

import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import IntConverter, UUIDConverter
from django.urls.resolvers import RoutePattern

from tests.labeling.double_blind_world import NOWHERE
from tests.labeling.probe import (
    API,
    FORBIDDEN_FIELD_WORDS,
    METHODS,
    Probe,
    Route,
    _snapshot_of_others,
    exposed,
    leaks,
    raw,
)

pytestmark = pytest.mark.django_db


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
        # The operator application: estimates, confidence, decisions (annotators get 403).
        "/operate/", "/operate/feed.json", "/operate/unloadings/{railcar_id}/",
        "/operate/unloadings/{railcar_id}/decide/",
        "/operate/unloadings/{railcar_id}/layers/{index}/keyframe.jpg",
        "/api/v1/operate/unloadings/", "/api/v1/operate/unloadings/{railcar_id}/decision/",
        # The plant's layer-by-layer posting (labeling.live_apis): an annotator gets nowhere.
        "/api/v1/unloadings/open/", "/api/v1/unloadings/{uid}/frames/",
        "/api/v1/unloadings/{uid}/close/",
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
