"""Who is calling the API: a machine client by its key, or a person by their token or their site session.

`Authorization: Bearer plk_…` is a client's key, `Bearer plt_…` a person's token (integrations.keys); without the
header, the member site's session (with its CSRF check) is tried. A bad, revoked or expired secret is refused with
401 and says no more than that."""

from dataclasses import dataclass

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from integrations import keys
from integrations.models import ApiClient, ApiKey


@dataclass(frozen=True)
class ClientPrincipal:
    """request.user for a machine client: not a person. Services that record who acted get `client.created_by`,
    the program manager who registered the client, with the client named in the note."""

    client: ApiClient
    key: ApiKey

    is_authenticated = True
    is_anonymous = False
    is_active = True
    pk = None

    def __str__(self):
        return str(self.client)


class BearerAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send the key as `Authorization: Bearer <key>`.")
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The key is not valid.") from None
        row = keys.find(secret)
        if row is None:
            raise exceptions.AuthenticationFailed("The key is not valid, or it was revoked or has expired.")
        if isinstance(row, ApiKey):
            return ClientPrincipal(client=row.client, key=row), row
        if not row.user.is_active:
            raise exceptions.AuthenticationFailed("The key is not valid, or it was revoked or has expired.")
        return row.user, row

    def authenticate_header(self, request):
        return f'{self.keyword} realm="api"'


class BearerScheme(OpenApiAuthenticationExtension):
    target_class = BearerAuthentication
    name = "bearer"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A machine client's key (`plk_…`, made in the admin) or a person's token (`plt_…`, "
            "from POST /api/v1/auth/tokens/).",
        }
