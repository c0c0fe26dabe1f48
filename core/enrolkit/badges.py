"""Badges and their awards (read by rule conditions)."""

from __future__ import annotations

from sqlalchemy import select

from . import clock
from .log import record
from .models import Badge, BadgeAward, User
from .site import Site


def award(site: Site, name: str, user: User) -> bool:
    """Award the badge named ``name`` (created on first award); False if already held."""
    with site.atomic():
        badge = site.session.scalar(select(Badge).where(Badge.name == name))
        if badge is None:
            badge = Badge(name=name)
            site.session.add(badge)
            site.session.flush()
        if site.session.get(BadgeAward, (badge.id, user.id)) is not None:
            return False
        site.session.add(BadgeAward(badge_id=badge.id, user_id=user.id, timeawarded=clock.now()))
        record(site, "badge_awarded", "core", user_id=user.id, reason=name)
        site.session.flush()
    return True
