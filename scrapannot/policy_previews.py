"""What-if sections of the policies page: an app shows what a policy change would have done
before an admin makes it (adjudication: the aggregation method and STD threshold against the
last weeks' ratings). Apps register here in their AppConfig.ready(), so that the page, which
lives below them, never imports them."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Preview:
    name: str
    template: str  # the app's own template, included in the policies page
    # Takes the page's query parameters, returns the template's context (read-only work).
    context: Callable[[Mapping[str, str]], dict[str, Any]]


_PREVIEWS: dict[str, Preview] = {}


def register_preview(preview: Preview) -> None:
    _PREVIEWS[preview.name] = preview


def previews() -> list[Preview]:
    return list(_PREVIEWS.values())
