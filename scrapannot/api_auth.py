"""API token authentication that reads the caller's roles in the same query as the token, and
keeps what it read for a moment.

Every API call checks a role (`scrapannot.api.HasRole`); DRF's TokenAuthentication reads the
token and its user, and the roles took a second query. On PostgreSQL the group names come along,
aggregated into an array, so a call pays one query for both.

Then each process keeps the token's user and roles for API_TOKEN_CACHE_SECONDS (2 s by default):
an annotator's loop asks twice a second, and reading the same rows each time cost about a tenth
of a call. So a role an admin removes, a user deactivated or a token deleted stops working
within that many seconds, not on the very next call; 0 reads them on every call. Only tokens
that authenticated are kept, so unknown keys cannot fill the memory.
"""

import copy
import threading
import time
from typing import Any

from django.conf import settings
from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from scrapannot.roles import remember_roles

# key -> (monotonic time it expires, token with its user, group names)
_recent: dict[str, tuple[float, Token, list[str]]] = {}
_recent_lock = threading.Lock()
_MOST_KEPT = 10_000  # tokens; past it the cache starts over (people, not a growing set)


def forget_tokens() -> None:
    """Empty this process's token cache (tests, and a process that must see a change now)."""
    with _recent_lock:
        _recent.clear()


class RoleTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        ttl = settings.API_TOKEN_CACHE_SECONDS
        kept = _recent.get(key) if ttl > 0 else None
        if kept is not None and kept[0] > time.monotonic():
            _, token, group_names = kept
        else:
            token, group_names = self._read(key)
            if ttl > 0:
                with _recent_lock:
                    if len(_recent) >= _MOST_KEPT:
                        _recent.clear()
                    _recent[key] = (time.monotonic() + ttl, token, group_names)
        # A copy per request: the roles are remembered on the user object, and concurrent
        # requests (threaded workers) must not share one.
        token = copy.copy(token)
        user = token.user = copy.copy(token.user)
        remember_roles(user, group_names=group_names)
        return user, token

    def _read(self, key: str) -> tuple[Token, list[str]]:
        if connection.vendor != "postgresql":
            user, token = super().authenticate_credentials(key)
            return token, list(user.groups.values_list("name", flat=True))
        token = (
            self.get_model()
            .objects.select_related("user")
            .annotate(group_names=ArrayAgg("user__groups__name", default=None))
            .filter(key=key)
            .first()
        )
        if token is None:
            raise AuthenticationFailed(_("Invalid token."))
        if not token.user.is_active:
            raise AuthenticationFailed(_("User inactive or deleted."))
        return token, [name for name in token.group_names or [] if name is not None]
