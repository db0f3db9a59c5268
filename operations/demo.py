"""Demo accounts for a first run: one or more users per role, all with one documented password.

`manage.py demo` calls `ensure_demo_users`; tests call it too. Re-running it is a no-op apart
from putting back what someone changed: the documented password, the role and the staff flag.
These accounts are for a laptop demo only; production creates real users in the Django admin.
"""

from dataclasses import dataclass

from django.contrib.auth.models import Group, User
from django.db import transaction
from rest_framework.authtoken.models import Token

from labeling.lines import OPERATE_LINE, POST_UNLOADINGS, grant, may
from labeling.models import Line
from scrapannot.roles import Role

# Printed on the console by `manage.py demo` and written in the README: not a secret.
DEMO_PASSWORD = "demo-pass-2026"  # noqa: S105


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    # The demo admin is a Django superuser so that every Django admin page works without a
    # permission set; the "admin" group alone carries no Django model permissions.
    superuser: bool = False


# The lines of the synthetic railcars (operations.synth): the demo plant system posts for them.
DEMO_LINES = ("L1", "L2", "L3", "L4", "L5", "L6")

DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("annotator1", Role.ANNOTATOR),
    DemoAccount("annotator2", Role.ANNOTATOR),
    DemoAccount("annotator3", Role.ANNOTATOR),
    DemoAccount("senior1", Role.SENIOR_INSPECTOR),
    DemoAccount("admin1", Role.ADMIN, superuser=True),
    DemoAccount("plant1", Role.PLANT_SYSTEM),
    DemoAccount("operator1", Role.OPERATOR),
)


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    created: bool
    # Plant systems authenticate to the API with a token, not a browser session.
    api_token: str | None = None


def ensure_demo_user(*, account: DemoAccount, password: str = DEMO_PASSWORD) -> DemoUser:
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=account.username)
        changed = created
        if not user.check_password(password):
            user.set_password(password)
            changed = True
        for field, value in (
            ("is_staff", account.superuser),
            ("is_superuser", account.superuser),
            ("is_active", True),
        ):
            if getattr(user, field) != value:
                setattr(user, field, value)
                changed = True
        if changed:
            user.save()
        # get_or_create: a transactional test flushes the groups the roles migration made.
        group, _ = Group.objects.get_or_create(name=account.role.value)
        user.groups.set([group])
        token = None
        # The plant system posts for the demo's lines; the operator and the senior inspector
        # review them on /operate/.
        permission = {
            Role.PLANT_SYSTEM: POST_UNLOADINGS,
            Role.OPERATOR: OPERATE_LINE,
            Role.SENIOR_INSPECTOR: OPERATE_LINE,
        }.get(account.role)
        if account.role == Role.PLANT_SYSTEM:
            token = Token.objects.get_or_create(user=user)[0].key
        for name in DEMO_LINES if permission else ():
            line = Line.objects.get_or_create(name=name)[0]
            if not may(user, permission, name):
                grant(actor=None, user=user, line=line, permission=permission)
    return DemoUser(username=user.username, role=account.role, created=created, api_token=token)


def ensure_demo_users(
    *, accounts: tuple[DemoAccount, ...] = DEMO_ACCOUNTS, password: str = DEMO_PASSWORD
) -> list[DemoUser]:
    """Create the demo accounts that are missing and repair the ones that drifted."""
    return [ensure_demo_user(account=account, password=password) for account in accounts]
