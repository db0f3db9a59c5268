"""Roles are Django groups; these names are the only place they are spelled."""

from collections.abc import Callable, Iterable
from enum import StrEnum
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

ViewFunc = Callable[..., HttpResponse]


class Role(StrEnum):
    ANNOTATOR = "annotator"
    SENIOR_INSPECTOR = "senior inspector"
    ADMIN = "admin"
    PLANT_SYSTEM = "plant system"
    OPERATOR = "line operator"


def user_roles(user: AbstractBaseUser | AnonymousUser) -> set[Role]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_scrapannot_roles", None)
    if cached is None:
        cached = remember_roles(user, group_names=user.groups.values_list("name", flat=True))
    return cached


def remember_roles(user: AbstractBaseUser, *, group_names: Iterable[str | None]) -> set[Role]:
    """Keep the user's roles, read from its groups' names, on the user object for this request
    (the API's token check reads the names in its own query: `scrapannot.api_auth`)."""
    names = set(group_names)
    roles = {role for role in Role if role.value in names}
    if user.is_superuser:
        roles.add(Role.ADMIN)
    user._scrapannot_roles = roles
    return roles


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: Role) -> bool:
    return bool(user_roles(user) & set(roles))


def roles_context(request: HttpRequest) -> dict[str, object]:
    roles = user_roles(request.user)
    return {
        "is_annotator": Role.ANNOTATOR in roles,
        "is_senior": Role.SENIOR_INSPECTOR in roles,
        "is_admin": Role.ADMIN in roles,
        "is_operator": Role.OPERATOR in roles,
    }


def role_required(*roles: Role) -> Callable[[ViewFunc], ViewFunc]:
    """Log in first; then only users holding one of `roles` get past (403 for the rest)."""

    def decorator(view: ViewFunc) -> ViewFunc:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not has_role(request.user, *roles):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return login_required(wrapped)

    return decorator
