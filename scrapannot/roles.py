"""Roles are Django groups; these names are the only place they are spelled."""

from enum import StrEnum

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest


class Role(StrEnum):
    ANNOTATOR = "annotator"
    SENIOR_INSPECTOR = "senior inspector"
    ADMIN = "admin"
    PLANT_SYSTEM = "plant system"


def user_roles(user: AbstractBaseUser | AnonymousUser) -> set[Role]:
    if not user.is_authenticated:
        return set()
    cached = getattr(user, "_scrapannot_roles", None)
    if cached is None:
        names = set(user.groups.values_list("name", flat=True))
        cached = {role for role in Role if role.value in names}
        if user.is_superuser:
            cached.add(Role.ADMIN)
        user._scrapannot_roles = cached
    return cached


def has_role(user: AbstractBaseUser | AnonymousUser, *roles: Role) -> bool:
    return bool(user_roles(user) & set(roles))


def roles_context(request: HttpRequest) -> dict[str, object]:
    roles = user_roles(request.user)
    return {
        "is_annotator": Role.ANNOTATOR in roles,
        "is_senior": Role.SENIOR_INSPECTOR in roles,
        "is_admin": Role.ADMIN in roles,
    }
