"""SCIM 2.0 (RFC 7643/7644) at ``/scim/v2``: an identity provider provisions users and cohorts.

Built on scim2-server (protocol, discovery, PATCH, errors) and scim2-models (resources,
filters); :mod:`.storage` maps the resources to enrolkit, :mod:`.filters` compiles filters to SQL.
Requests carry a bearer token with the ``scim`` scope (``enrolkit token create NAME --scope
scim``); REST API tokens are refused here and SCIM tokens on the REST API, so an IdP's
credential can do nothing else.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Extension,
    Filter,
    ForbiddenException,
    Group,
    Mutability,
    Patch,
    ResourceType,
    Schema,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    User,
)
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.service import ScimService
from sqlalchemy import select

from ..models import ProfileField
from .storage import EnrolkitStorage, profile_extension, user_model

if TYPE_CHECKING:
    from scim2_server.requests import ScimRequest
    from scim2_server.responses import ScimResponse

    from ..runtime import Runtime

MOUNT = "/scim"
MAX_RESULTS = 1000

#: Attributes of the standard schemas that enrolkit does not store (sub-attributes after a dot).
#: ``/Schemas`` leaves them out, so a client that discovers the service knows what a round trip
#: keeps; a request carrying them is still accepted and they are ignored, as RFC 7644 §3.3 lets
#: a server ignore what it does not keep (IdPs send them whatever the schema says).
NOT_STORED: dict[str, frozenset[str]] = {
    "urn:ietf:params:scim:schemas:core:2.0:User": frozenset(
        "nickName profileUrl title userType preferredLanguage locale timezone phoneNumbers ims"
        " photos addresses entitlements roles x509Certificates name.formatted name.middleName"
        " password groups emails.display name.honorificPrefix name.honorificSuffix".split()
    ),
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": frozenset(
        "employeeNumber costCenter division manager".split()
    ),
}
#: Attributes enrolkit computes, published read-only: a user's displayName is made of the given
#: and family names; a member's display is the user's username.
COMPUTED: dict[str, frozenset[str]] = {
    "urn:ietf:params:scim:schemas:core:2.0:User": frozenset({"displayName"}),
    "urn:ietf:params:scim:schemas:core:2.0:Group": frozenset({"members.display"}),
}


def published(schema: Schema) -> Schema:
    """``schema`` as ``/Schemas`` shows it: without what enrolkit does not store, and with what
    it computes read-only."""
    dropped = NOT_STORED.get(schema.id, frozenset())
    computed = COMPUTED.get(schema.id, frozenset())
    if not dropped and not computed:
        return schema
    schema = schema.model_copy(deep=True)

    def keep(attributes, prefix: str):
        kept = []
        for attribute in attributes or []:
            path = prefix + attribute.name
            if path in dropped:
                continue
            if path in computed:
                attribute.mutability = Mutability.read_only
            if attribute.sub_attributes:
                attribute.sub_attributes = keep(attribute.sub_attributes, path + ".")
            kept.append(attribute)
        return kept

    schema.attributes = keep(schema.attributes, "")
    return schema


class Provider(ScimProvider):
    """scim2-models' provider, publishing the schemas as enrolkit keeps them."""

    @cached_property
    def schemas(self) -> tuple[Schema, ...]:
        return tuple(published(schema) for schema in super().schemas)


def provider(profile: type[Extension] | None = None) -> Provider:
    config = ServiceProviderConfig(
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=True),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type=AuthenticationScheme.Type.oauthbearertoken,
                name="Bearer token",
                description="enrolkit token create NAME --scope scim",
                primary=True,
            )
        ],
    )
    return Provider(
        models=[User, EnterpriseUser, Group] + ([profile] if profile else []),
        resource_types=[
            ResourceType.from_resource(user_model(profile)),
            ResourceType.from_resource(Group),
        ],
        config=config,
    )


class ScimApplication(WSGIApplication):
    """scim2-server's WSGI application, with enrolkit's tokens and one site per request."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.fields: tuple[str, ...] | None = None
        self.lock = threading.Lock()
        self.storage_of_requests = EnrolkitStorage()
        self._build(())

    def _build(self, fields: tuple[str, ...]) -> None:
        """Describe the service for these custom profile fields (the enrolkit extension)."""
        self.fields = fields
        self.storage_of_requests.describe(profile_extension(fields))
        scim_provider = provider(self.storage_of_requests.profile)
        super().__init__(self.storage_of_requests, scim_provider, ScimService(scim_provider))

    def _follow_profile_fields(self, site) -> None:
        """A profile field added since the last request becomes an attribute of the extension."""
        fields = tuple(sorted(site.session.scalars(select(ProfileField.shortname))))
        if fields != self.fields:
            with self.lock:
                if fields != self.fields:
                    self._build(fields)

    def check_auth(self, request: ScimRequest) -> None:
        from ..api import tokens

        scheme, _, raw = (request.header("Authorization") or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise UnauthorizedException(detail="send 'Authorization: Bearer <scim token>'")
        token = tokens.authenticate(self.storage_of_requests.site, raw.strip())
        if token is None:
            raise UnauthorizedException(detail="the token is unknown or revoked")
        if token.scope != tokens.SCIM:
            raise ForbiddenException(
                detail=f"token {token.name!r} has the {token.scope} scope; SCIM needs a scim token"
            )
        self.storage_of_requests.site.actor = token.name

    def serve(self, request: ScimRequest) -> ScimResponse:
        with self.runtime.site(origin="scim") as site:
            self._follow_profile_fields(site)
            site.session.rollback()
            self.storage_of_requests.bind(site)
            try:
                return super().serve(request)
            finally:
                site.session.rollback()
                self.storage_of_requests.bind(None)


def mount(app) -> None:
    """Serve SCIM under ``/scim`` beside the Flask app (same process, same runtime)."""
    from werkzeug.middleware.dispatcher import DispatcherMiddleware

    runtime = app.extensions["enrolkit"]
    app.wsgi_app = DispatcherMiddleware(app.wsgi_app, {MOUNT: ScimApplication(runtime)})
