import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from scrapannot import policy
from scrapannot.models import AuditEvent, PolicySetting

pytestmark = pytest.mark.django_db


def test_a_policy_without_a_row_has_its_default():
    assert policy.policy_value("pool.min_eligible_layers") == 3
    assert policy.policy_value("quality.min_mean_luma") == 50.0


def test_setting_a_policy_is_validated_and_audited(admin_user):
    policy.set_policy(key="pool.min_eligible_layers", value="5", actor=admin_user)

    assert policy.policy_value("pool.min_eligible_layers") == 5
    event = AuditEvent.objects.get(action="policy.changed")
    assert event.payload == {"key": "pool.min_eligible_layers", "old": 3, "new": 5}
    assert event.actor == admin_user


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pool.min_eligible_layers", "2.5"),
        ("pool.min_eligible_layers", 0),
        ("pool.min_eligible_layers", "lots"),
        ("quality.min_sharpness", "nan"),
        ("quality.min_sharpness", "inf"),
        ("quality.min_sharpness", -1),
        ("quality.min_sharpness", True),
        ("quality.min_sharpness", [1]),
        ("no.such.policy", 1),
    ],
)
def test_a_bad_policy_value_is_refused_and_changes_nothing(key, value, admin_user):
    with pytest.raises(ValidationError):
        policy.set_policy(key=key, value=value, actor=admin_user)

    assert not PolicySetting.objects.exists()
    assert not AuditEvent.objects.exists()


def test_the_policies_page_lists_every_policy_and_saves_a_change(admin_user):
    client = Client()
    client.force_login(admin_user)

    page = client.get(reverse("policies"))
    saved = client.post(reverse("policies"), {"key": "quality.max_haze", "value": "0.4"})
    refused = client.post(reverse("policies"), {"key": "quality.max_haze", "value": "-2"})

    assert page.status_code == 200
    assert {row["policy"].key for row in page.context["rows"]} == set(policy.registered())
    assert saved.status_code == 302 and refused.status_code == 400
    assert policy.policy_value("quality.max_haze") == 0.4
    assert "at least 0.0" in refused.content.decode()


def test_a_maximum_aspect_below_the_minimum_is_refused_on_its_field(admin_user):
    client = Client()
    client.force_login(admin_user)

    refused = client.post(reverse("policies"), {"key": "quality.max_aspect", "value": "1.0"})

    assert refused.status_code == 400
    assert "quality.min_aspect (1.2) may not be above quality.max_aspect (1.0)" in (
        refused.content.decode()
    )
    assert policy.policy_value("quality.max_aspect") == 2.4
    assert not AuditEvent.objects.exists()


def test_a_minimum_aspect_above_the_maximum_is_refused_too(admin_user):
    policy.set_policy(key="quality.max_aspect", value=2.0, actor=admin_user)
    with pytest.raises(ValidationError) as refused:
        policy.set_policy(key="quality.min_aspect", value=2.1, actor=admin_user)
    assert "quality.min_aspect" in refused.value.message_dict
    policy.set_policy(key="quality.min_aspect", value=2.0, actor=admin_user)  # equal is fine
    assert policy.policy_value("quality.min_aspect") == 2.0
