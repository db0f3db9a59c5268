"""API plumbing shared by every app: error shape and role permissions."""

from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.utils.serializer_helpers import BindingDict
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from scrapannot.roles import Role, has_role

RETRY_AFTER_S = 5


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, but every error body is an object, so clients can always read `detail`
    or field errors from the same place."""
    if isinstance(exc, SuspiciousOperation):
        # Django's request parsing refuses a body over its limits (a manifest larger than
        # DATA_UPLOAD_MAX_MEMORY_SIZE, more parts than DATA_UPLOAD_MAX_NUMBER_FILES) this way;
        # unhandled, it becomes Django's HTML 400 page with no reason.
        return Response({"detail": f"Request refused: {exc}"}, status=400)
    if isinstance(exc, OperationalError | InterfaceError):
        # PostgreSQL restarting or unreachable: the transaction rolled back, and the same request
        # will succeed once it is back (an ingest re-post is idempotent), so tell the client so.
        return Response(
            {"detail": "The database is unavailable; retry shortly."},
            status=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response


class PrebuiltFieldsSerializer(serializers.Serializer):
    """A flat input serializer whose fields are built once per class, not for every request.

    DRF deep-copies each declared field for every serializer instance: for the rating's three
    fields, about 5 % of a worker's CPU in the annotator loop. Fields keep no state while they
    validate, so one bound set serves every instance, from any thread. Only for serializers of
    plain fields: no nested serializer, no field that reads the context, no partial update."""

    @property
    def fields(self) -> BindingDict:
        cls = type(self)
        shared = cls.__dict__.get("_prebuilt_fields")
        if shared is None:
            prototype = cls()
            shared = BindingDict(prototype)
            for name, field in prototype.get_fields().items():
                shared[name] = field
            cls._prebuilt_fields = shared
        return shared


class HasRole(permissions.BasePermission):
    """Allow users holding any of `view.allowed_roles`."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        roles: tuple[Role, ...] = getattr(view, "allowed_roles", ())
        return bool(request.user and has_role(request.user, *roles))


API_PREFIX = "/api/"


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """handler500: API clients get JSON with a reason, browsers the HTML page."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Internal server error."},
                            status=500)  # fmt: skip
    return defaults.server_error(request, template_name)


def bad_request(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": f"Bad request: {exception}"}, status=400)
    return defaults.bad_request(request, exception, **kwargs)


def page_not_found(request: HttpRequest, exception: Exception, **kwargs: Any) -> HttpResponse:
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception, **kwargs)
