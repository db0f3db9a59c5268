"""API plumbing shared by every app: error shape and role permissions."""

from typing import Any

from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from scrapannot.roles import Role, has_role


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, but every error body is an object, so clients can always read `detail`
    or field errors from the same place."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, list):
        response.data = {"detail": response.data}
    return response


class HasRole(permissions.BasePermission):
    """Allow users holding any of `view.allowed_roles`."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        roles: tuple[Role, ...] = getattr(view, "allowed_roles", ())
        return bool(request.user and has_role(request.user, *roles))
