"""The error answers every API operation can give, written into the OpenAPI schema.

drf-spectacular documents what a view declares, which is the success; the errors come from
layers every view shares: authentication (401), roles and line grants (403), path lookups (404),
input validation (400), a body of a content type the operation does not read (415), the state
rules of leases, ratings and unloadings (409), and a database that is restarting (503, with
Retry-After; scrapannot.api.exception_handler). Each is an object
with `detail`, or field errors keyed by field name. A postprocessing hook adds those that apply to
each operation, so a client generated from the schema, and schemathesis, know every code.
"""

from typing import Any

ERROR_SCHEMA = {
    "type": "object",
    "description": "`detail` says why; a validation error names the fields instead.",
    "properties": {"detail": {}},
    "additionalProperties": True,
}
WHY = {
    "400": "The input is invalid: `detail` or field errors say why.",
    "401": "No or bad credentials.",
    "403": "The account lacks the role or the line grant this needs.",
    "404": "No such object, or not one this account may see.",
    "409": "The object's state refuses it (a lease ended or given back, already rated, closed).",
    "415": "The body's content type is not one this operation reads.",
    "503": "The database is unavailable; retry after the Retry-After header's seconds.",
}
WRITES = {"post", "put", "patch", "delete"}


def codes_for(path: str, method: str) -> list[str]:
    codes = ["401", "403", "503"]
    if "{" in path:
        codes.append("404")
    if method in WRITES:
        codes += ["400", "409", "415"]
    return codes


def document_error_answers(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING_HOOKS entry: add the shared error answers."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for code in codes_for(path, method):
                operation["responses"].setdefault(
                    code,
                    {
                        "description": WHY[code],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
