"""API tokens: made by ``enrolkit token create``, shown once, stored as a SHA-256 digest.

A token is 32 random bytes (``secrets.token_urlsafe``), so a plain digest is safe to store: there
is nothing to guess that a slow hash would protect. A request's token is found by its digest, and
a revoked token is kept (revoked) so its name shows in ``enrolkit token list``.

Permissions: a token acts as a site admin. ``read`` tokens may only read (GET); ``write`` tokens
may change anything the web admin may. Tokens belong to no user, so the web's finer course-teacher
rule has nothing to apply to yet.
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select

from ..errors import EnrolkitError, NotFound, Refused
from ..log import record
from ..models import ApiToken
from ..site import Site
from . import READ, SCIM, SCOPES, WRITE  # noqa: F401  (re-exported: tokens.READ, ...)

#: Tokens start with this, so a leaked one is recognisable (and scanners can look for it).
TOKEN_PREFIX = "ek_"
NAME_LENGTH = 100


def digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()


def create(site: Site, name: str, scope: str = READ) -> str:
    """Make a token and return it; only its digest is stored. A revoked token's name may be
    reused (the revoked one is replaced); an active one's may not."""
    name = name.strip()
    if not name or len(name) > NAME_LENGTH:
        raise EnrolkitError(f"a token name has 1 to {NAME_LENGTH} characters")
    if scope not in SCOPES:
        raise EnrolkitError(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with site.atomic():
        existing = site.session.scalar(select(ApiToken).where(ApiToken.name == name))
        if existing is not None:
            if not existing.revoked:
                raise Refused(
                    f"a token named {name!r} exists; revoke it first "
                    f"(enrolkit token revoke {name}) or choose another name"
                )
            site.session.delete(existing)
            site.session.flush()
        site.session.add(
            ApiToken(name=name, scope=scope, token_hash=digest(raw), created=site.now())
        )
        record(site, "token_created", "core", reason=f"{name} ({scope})")
    return raw


def revoke(site: Site, name: str) -> None:
    with site.atomic():
        token = site.session.scalar(select(ApiToken).where(ApiToken.name == name))
        if token is None:
            raise NotFound(f"no API token named {name!r}; see enrolkit token list")
        if token.revoked:
            raise EnrolkitError(f"token {name!r} is already revoked")
        token.revoked = True
        record(site, "token_revoked", "core", reason=name)


def listing(site: Site) -> list[dict]:
    """Every token by name: scope, creation time, revoked. Never the token itself."""
    return [
        {"name": t.name, "scope": t.scope, "created": t.created, "revoked": t.revoked}
        for t in site.session.scalars(select(ApiToken).order_by(ApiToken.name))
    ]


def authenticate(site: Site, raw: str) -> ApiToken | None:
    """The active token ``raw`` is, or None."""
    return site.session.scalar(
        select(ApiToken).where(ApiToken.token_hash == digest(raw), ApiToken.revoked.is_(False))
    )
