"""Per-line access, with django-guardian object permissions on `Line`.

Two permissions, granted per line: `post_unloadings` (a plant system's token may post for the
line) and `operate_line` (an operator or senior inspector sees and acts on the line's
unloadings). Admins hold every line. Everything that filters by line asks here, so that a line
not granted looks exactly like a railcar that does not exist (the callers answer 404).
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from guardian.shortcuts import assign_perm, get_objects_for_user, remove_perm

from labeling.models import Line
from scrapannot import audit
from scrapannot.roles import Role, has_role

POST_UNLOADINGS = "post_unloadings"
OPERATE_LINE = "operate_line"
PERMISSIONS = (POST_UNLOADINGS, OPERATE_LINE)

User = AbstractBaseUser | AnonymousUser


def line_names(user: User, permission: str) -> set[str] | None:
    """The names of the lines `user` holds `permission` on; None means every line (admins)."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown line permission {permission!r}")
    if not user.is_authenticated:
        return set()
    if has_role(user, Role.ADMIN):
        return None
    lines = get_objects_for_user(
        user, f"labeling.{permission}", klass=Line, accept_global_perms=False
    )
    return set(lines.values_list("name", flat=True))


def may(user: User, permission: str, line_name: str) -> bool:
    names = line_names(user, permission)
    return names is None or line_name in names


def grant(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, line: Line, permission: str
) -> None:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown line permission {permission!r}")
    with transaction.atomic():
        assign_perm(f"labeling.{permission}", user, line)
        audit.record(
            action="line.granted",
            actor=actor,
            obj=line,
            payload={"user": user.get_username(), "permission": permission, "line": line.name},
        )


def revoke(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, line: Line, permission: str
) -> None:
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown line permission {permission!r}")
    with transaction.atomic():
        remove_perm(f"labeling.{permission}", user, line)
        audit.record(
            action="line.revoked",
            actor=actor,
            obj=line,
            payload={"user": user.get_username(), "permission": permission, "line": line.name},
        )
