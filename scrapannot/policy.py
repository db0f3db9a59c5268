"""Admin-editable policies: thresholds and counts that run the product.

Each app registers its policies (key, default, bounds, why) in its AppConfig.ready(); rows in
`PolicySetting` hold the values admins set. A policy without a row has its default. Changing a
policy goes through `set_policy`, which validates and writes an audit event.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction

from scrapannot import audit
from scrapannot.models import PolicySetting


@dataclass(frozen=True)
class Policy:
    """A numeric policy with bounds, or (with `choices`) one of a few named options."""

    key: str
    default: float | int | str
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def clean(self, value: Any) -> float | int | str:
        if self.choices:
            if not isinstance(value, str) or value.strip() not in self.choices:
                raise ValidationError(f"{self.key}: one of {', '.join(self.choices)}")
            return value.strip()
        kind = type(self.default)
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ValidationError(f"{self.key}: expected a number")
        try:
            cleaned = kind(value)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"{self.key}: expected {kind.__name__}") from exc
        if kind is int and float(value) != cleaned:
            raise ValidationError(f"{self.key}: expected a whole number")
        if cleaned != cleaned or cleaned in (float("inf"), float("-inf")):  # NaN or infinite
            raise ValidationError(f"{self.key}: expected a finite number")
        if self.minimum is not None and cleaned < self.minimum:
            raise ValidationError(f"{self.key}: at least {self.minimum}")
        if self.maximum is not None and cleaned > self.maximum:
            raise ValidationError(f"{self.key}: at most {self.maximum}")
        return cleaned


_REGISTRY: dict[str, Policy] = {}
_POLICY_LOCK_KEY = 0x5C4A_9011  # any constant no other advisory lock uses


def register(*policies: Policy) -> None:
    for policy in policies:
        _REGISTRY[policy.key] = policy


def registered() -> Mapping[str, Policy]:
    return _REGISTRY


@dataclass(frozen=True)
class Rule:
    """A rule between policies (e.g. min_aspect <= max_aspect): `check` gets every current value
    and answers what is wrong, or None."""

    keys: tuple[str, ...]
    check: Callable[[Mapping[str, Any]], str | None]


_RULES: list[Rule] = []


def register_rule(
    *, keys: tuple[str, ...], check: Callable[[Mapping[str, Any]], str | None]
) -> None:
    _RULES.append(Rule(keys=keys, check=check))


def at_most(low_key: str, high_key: str) -> Callable[[Mapping[str, Any]], str | None]:
    """The common rule: one policy may not exceed another."""

    def check(values: Mapping[str, Any]) -> str | None:
        if values[low_key] > values[high_key]:
            return f"{low_key} ({values[low_key]}) may not be above {high_key} ({values[high_key]})"
        return None

    return check


def broken_rules(values: Mapping[str, Any], *, touching: str) -> list[str]:
    return [
        message
        for rule in _RULES
        if touching in rule.keys and (message := rule.check(values)) is not None
    ]


def policy_values(prefix: str = "") -> dict[str, float | int | str]:
    """Current values of every registered policy under `prefix`, in one query."""
    values = {k: p.default for k, p in _REGISTRY.items() if k.startswith(prefix)}
    for key, value in PolicySetting.objects.filter(key__startswith=prefix).values_list(
        "key", "value"
    ):
        if key in values:
            values[key] = _REGISTRY[key].clean(value)
    return values


def policy_value(key: str) -> float | int | str:
    return policy_values(key)[key]


def set_policy(*, key: str, value: Any, actor: AbstractBaseUser | None) -> PolicySetting:
    if key not in _REGISTRY:
        raise ValidationError(f"unknown policy {key!r}")
    cleaned = _REGISTRY[key].clean(value)
    with transaction.atomic():
        # One policy change at a time: two admins raising min and lowering max together could
        # each pass the rules alone and contradict each other once both commit.
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_POLICY_LOCK_KEY])
        values = policy_values()
        values[key] = cleaned
        if broken := broken_rules(values, touching=key):
            raise ValidationError({key: broken})
        setting, _ = PolicySetting.objects.select_for_update().get_or_create(
            key=key, defaults={"value": _REGISTRY[key].default}
        )
        old = setting.value
        setting.value = cleaned
        setting.updated_by = actor
        setting.save()
        audit.record(
            action="policy.changed",
            actor=actor,
            obj=setting,
            payload={"key": key, "old": old, "new": cleaned},
        )
    return setting
