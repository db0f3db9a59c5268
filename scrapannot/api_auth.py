"""API token authentication that reads the caller's roles in the same query as the token.

Every API call checks a role (`scrapannot.api.HasRole`); DRF's TokenAuthentication reads the
token and its user, and the roles took a second query. On PostgreSQL the group names come along,
aggregated into an array, so a call pays one query for both. Roles are still read per request:
a role an admin removes stops working on the caller's next call.
"""

from typing import Any

from django.contrib.postgres.aggregates import ArrayAgg
from django.db import connection
from django.utils.translation import gettext_lazy as _
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from scrapannot.roles import remember_roles


class RoleTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, key: str) -> tuple[Any, Token]:
        if connection.vendor != "postgresql":
            return super().authenticate_credentials(key)
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
        remember_roles(token.user, group_names=token.group_names or [])
        return token.user, token
