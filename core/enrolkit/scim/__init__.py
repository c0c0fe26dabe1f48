"""SCIM 2.0 (RFC 7643/7644) at ``/scim/v2``: an identity provider provisions users and cohorts.

Built on scim2-server (protocol, discovery, PATCH, errors) and scim2-models (resources,
filters); :mod:`.storage` maps the resources to enrolkit, :mod:`.filters` compiles filters to SQL.
Requests carry a bearer token with the ``scim`` scope (``enrolkit token create NAME --scope
scim``); REST API tokens are refused here and SCIM tokens on the REST API, so an IdP's
credential can do nothing else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    EnterpriseUser,
    ETag,
    Filter,
    ForbiddenException,
    Group,
    Patch,
    ResourceType,
    ScimProvider,
    ServiceProviderConfig,
    Sort,
    UnauthorizedException,
    User,
)
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.service import ScimService

from .storage import EnrolkitStorage

if TYPE_CHECKING:
    from scim2_server.requests import ScimRequest
    from scim2_server.responses import ScimResponse

    from ..runtime import Runtime

MOUNT = "/scim"
MAX_RESULTS = 1000


def provider() -> ScimProvider:
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
    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[
            ResourceType.from_resource(User[EnterpriseUser]),
            ResourceType.from_resource(Group),
        ],
        config=config,
    )


class ScimApplication(WSGIApplication):
    """scim2-server's WSGI application, with enrolkit's tokens and one site per request."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.storage_of_requests = EnrolkitStorage()
        scim_provider = provider()
        super().__init__(self.storage_of_requests, scim_provider, ScimService(scim_provider))

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
