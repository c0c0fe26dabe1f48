"""Whether a user may be auto-enrolled in an instance now, and why not.

Two questions, kept apart because they are asked at different times: the *rule* (does the user
match the instance's condition tree?) and the *blockers* (the instance is closed, full or out of
its window; the user already has an enrolment in the course). A new enrolment needs both to pass;
an existing enrolment is re-checked against the rule only. The checks follow Moodle's
``enrol_allowed`` in order, minus its quirks: the limit counts every enrolment of the instance
(suspended ones too), the window's end is exclusive, and any enrolment the user already has in the
course, by any method and in any state, leaves them alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from enrolkit import clock
from enrolkit.models import EnrolInstance, User, UserEnrolment
from enrolkit.rules import Explanation, Rule, parse
from enrolkit.rules.explain import GROUP
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import func, select

from . import NAME
from .schema import SITE

COMPONENT = "enrol_autoenrol"


def rule_of(site: Site, instance: EnrolInstance) -> Rule:
    """The instance's rule, parsed (it was validated when saved)."""
    return parse((instance.settings or {}).get("rule"), site.plugins.conditions)


def removal_of(site: Site, instance: EnrolInstance, site_removal: str | None = None) -> str:
    """The instance's removal action; ``site`` means the site setting's (pass it when known)."""
    removal = (instance.settings or {}).get("removal") or SITE
    if removal != SITE:
        return removal
    return site_removal or site.method_settings(NAME)["removal"]


def window_blocker(instance: EnrolInstance, now: int) -> Text | None:
    settings = instance.settings or {}
    start, end = settings.get("enrolstart") or 0, settings.get("enrolend") or 0
    if start and now < start:
        return Text("new enrolments open on %(date)s", date=clock.iso(start))
    if end and now >= end:
        return Text("new enrolments closed on %(date)s", date=clock.iso(end))
    return None


def limit_of(instance: EnrolInstance) -> int:
    """The instance's ``maxenrolled``; 0 for no limit."""
    return (instance.settings or {}).get("maxenrolled") or 0


def enrolment_counts(site: Site, instances: Iterable[EnrolInstance]) -> dict[int, int]:
    """Enrolments per instance (suspended ones too) of those among ``instances`` that have a
    limit, in one query: for :func:`instance_blockers` over many instances."""
    ids = [instance.id for instance in instances if limit_of(instance)]
    if not ids:
        return {}
    counted = dict(
        site.session.execute(
            select(UserEnrolment.instance_id, func.count())
            .where(UserEnrolment.instance_id.in_(ids))
            .group_by(UserEnrolment.instance_id)
        ).all()
    )
    return {instance_id: counted.get(instance_id, 0) for instance_id in ids}


def instance_blockers(
    site: Site, instance: EnrolInstance, now: int, taken: int | None = None
) -> list[Text]:
    """What stops any new enrolment in the instance right now, whoever asks. (The callers
    check first that the method is enabled on the site.) ``taken``: the instance's enrolments
    when the caller counted them already (:func:`enrolment_counts`)."""
    if not instance.enabled:
        return [Text("this auto-enrolment is disabled")]
    if not (instance.settings or {}).get("newenrols", True):
        return [Text("new enrolments are not allowed")]
    window = window_blocker(instance, now)
    if window:
        return [window]
    limit = limit_of(instance)
    if limit:
        if taken is None:
            taken = enrolment_counts(site, [instance])[instance.id]
        if taken >= limit:
            return [
                Text(
                    "the course is full (%(taken)d of %(limit)d places taken)",
                    taken=taken,
                    limit=limit,
                )  # fmt: skip
            ]
    return []


def user_blockers(site: Site, instance: EnrolInstance, user: User) -> list[Text]:
    """What stops this user's new enrolment: an account that cannot use it, or an enrolment the
    user already has in the course."""
    if user.deleted or user.suspended:
        return [Text("the account %(username)s is suspended", username=user.username)]
    rows = site.session.execute(
        select(UserEnrolment.instance_id, UserEnrolment.status)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(UserEnrolment.user_id == user.id, EnrolInstance.course_id == instance.course_id)
    ).all()
    for instance_id, status in rows:
        if instance_id == instance.id:
            if status == 0:
                return [Text("%(username)s already has an active enrolment here",
                             username=user.username)]  # fmt: skip
            return [Text("%(username)s already has a suspended enrolment here",
                         username=user.username)]  # fmt: skip
    if rows:
        return [Text("%(username)s is already enrolled in the course by another method",
                     username=user.username)]  # fmt: skip
    return []


def blockers(site: Site, instance: EnrolInstance, user: User) -> list[Text]:
    return instance_blockers(site, instance, site.now()) or user_blockers(site, instance, user)


def why_not(explanation: Explanation) -> Text:
    """The failing part of an explanation, as one line a user can read (in their language
    where it is shown)."""
    if explanation.type != GROUP:
        return explanation.summary
    if explanation.op == "&":
        return Text.join("; ", [why_not(c) for c in explanation.children if not c.passed])
    if explanation.op == "|":
        return Text("none of: %(conditions)s",
                    conditions=Text.join(" / ", [why_not(c) for c in explanation.children]))  # fmt: skip
    # A negated group fails on what held: list it.
    held = [_held(child) for child in explanation.children if child.passed]
    return Text("%(group)s: %(conditions)s", group=explanation.summary,
                conditions=Text.join(" / ", held))  # fmt: skip


def _held(explanation: Explanation) -> Text:
    if explanation.type != GROUP:
        return explanation.summary
    return Text("%(group)s: %(conditions)s", group=explanation.summary,
                conditions=Text.join(" / ", [_held(c) for c in explanation.children]))  # fmt: skip


@dataclass(frozen=True)
class Verdict:
    """What ``enrolkit rule test`` says: the rule condition by condition, what else would stop a
    new enrolment, and the group the user would join."""

    instance_id: int
    username: str
    mode: str
    explanation: Explanation
    blockers: tuple[str, ...]
    group: str | None

    @property
    def matches(self) -> bool:
        return self.explanation.passed

    def text(self) -> str:
        lines = [
            f"instance {self.instance_id} ({self.mode} mode), user {self.username}:",
            self.explanation.text(1),
        ]
        if self.matches:
            lines.append(f"=> {self.username} matches the rule")
        else:
            lines.append(f"=> {self.username} does not match: {why_not(self.explanation)}")
        if self.blockers:
            lines.append("but no new enrolment now: " + "; ".join(self.blockers))
        if self.group:
            lines.append(f"group: {self.group}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "instance": self.instance_id,
            "user": self.username,
            "mode": self.mode,
            "matches": self.matches,
            "explanation": self.explanation.to_json(),
            "blockers": list(self.blockers),
            "group": self.group,
        }
