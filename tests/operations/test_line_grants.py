"""How an admin grants lines: `manage.py grant_line` and the Line admin's object permissions,
both through labeling.lines (audited)."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labeling import lines
from labeling.models import Line
from scrapannot.models import AuditEvent
from scrapannot.roles import Role
from tests.conftest import client_for, user_with_roles
from tests.operations.operate_factories import line

pytestmark = pytest.mark.django_db


def test_grant_line_gives_an_operator_a_line_and_revoke_takes_it_back():
    operator = user_with_roles("op", Role.OPERATOR)

    call_command("grant_line", "op", "L7", "--create", "--permission", "operate_line")
    assert lines.line_names(operator, lines.OPERATE_LINE) == {"L7"}

    call_command("grant_line", "op", "L7", "--revoke", "--permission", "operate_line")
    assert lines.line_names(operator, lines.OPERATE_LINE) == set()
    assert list(
        AuditEvent.objects.filter(action__startswith="line.").values_list("action", flat=True)
    ) == ["line.granted", "line.revoked"]


def test_grant_line_post_gives_a_plant_system_its_line():
    plant = user_with_roles("plant", Role.PLANT_SYSTEM)
    line("L3")

    call_command("grant_line", "plant", "L3")

    assert lines.line_names(plant, lines.POST_UNLOADINGS) == {"L3"}
    assert lines.line_names(plant, lines.OPERATE_LINE) == set()


@pytest.mark.parametrize("args", [("op", "L9"), ("nobody", "L1")])
def test_grant_line_refuses_an_unknown_line_or_user(args):
    user_with_roles("op", Role.OPERATOR)
    line("L1")
    with pytest.raises(CommandError):
        call_command("grant_line", *args)


def test_the_line_admin_grants_through_labeling_lines(admin_user):
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    operator = user_with_roles("op", Role.OPERATOR)
    l1 = line("L1")
    url = reverse("admin:labeling_line_permissions_manage_user", args=[l1.pk, operator.pk])
    client = client_for(admin_user)

    page = client.get(url)
    response = client.post(url, {"permissions": [lines.OPERATE_LINE]})

    assert page.status_code == 200 and b"delete_line" not in page.content
    assert response.status_code == 302
    assert lines.line_names(operator, lines.OPERATE_LINE) == {"L1"}
    event = AuditEvent.objects.get(action="line.granted")
    assert event.actor_id == admin_user.pk
    assert Line.objects.count() == 1
