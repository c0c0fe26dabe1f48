"""What happens to a method's ended enrolments is part of the method's declared contract
(``EnrolMethod.expiry_action`` / ``default_expiry_action``), not a site-setting name the end-date
task happens to look for; the setting keeps working, and the old helper warns."""

from __future__ import annotations

import pytest
from enrolkit import SUSPEND, UNENROL, Change, EnrolMethod, Plan, hookimpl
from enrolkit.errors import EnrolkitError
from enrolkit.expiry import enforce_end_dates
from enrolkit.models import ACTIVE, SUSPENDED, UserEnrolment
from sqlalchemy import select


class EndsSuspended(EnrolMethod):
    """Declares its expiry action as a class attribute, with no site setting at all."""

    name = "endsuspended"
    default_expiry_action = SUSPEND


class EndsByRule(EnrolMethod):
    """Decides in code: unenrols when the site is in 'strict' mode (a config value)."""

    name = "endsbyrule"

    def expiry_action(self, site):
        return UNENROL if site.get_config("endsbyrule", "strict") == "1" else "keep"


class EndsBadly(EnrolMethod):
    name = "endsbadly"

    def expiry_action(self, site):
        return "explode"


class Methods:
    @hookimpl
    def register_methods(self, register):
        for method in (EndsSuspended, EndsByRule, EndsBadly):
            register(method())


@pytest.fixture
def enrolkit_plugins():
    """The core and the three test methods."""
    return (Methods(),)


def ended_enrolment(site, method: str, clock) -> UserEnrolment:
    """One user enrolled by ``method``, whose enrolment ended an hour ago."""
    with site.atomic():
        course = site.course(f"C-{method}")
        user = site.user(f"u-{method}")
        instance = site.instance(course, method)
        site.engine.apply(
            Plan(instance.id, "setup", changes=[Change(user.id, timeend=clock.now() - 3600)])
        )
    return instance, user


def status(site, instance, user) -> int | None:
    site.session.expire_all()
    return site.session.scalar(
        select(UserEnrolment.status).where(
            UserEnrolment.instance_id == instance.id, UserEnrolment.user_id == user.id
        )
    )


def test_a_declared_default_expiry_action_is_applied_without_any_setting(db_site, clock):
    instance, user = ended_enrolment(db_site, "endsuspended", clock)
    with db_site.atomic():
        assert enforce_end_dates(db_site.site).startswith("1 ended enrolment(s)")
    assert status(db_site, instance, user) == SUSPENDED


def test_an_overridden_expiry_action_decides(db_site, clock):
    instance, user = ended_enrolment(db_site, "endsbyrule", clock)
    with db_site.atomic():
        enforce_end_dates(db_site.site)
    assert status(db_site, instance, user) == ACTIVE  # "keep"
    with db_site.atomic():
        db_site.set_config("endsbyrule", "strict", "1")
        enforce_end_dates(db_site.site)
    assert status(db_site, instance, user) is None  # unenrolled


def test_an_expiry_action_that_is_not_one_is_reported_and_the_others_still_apply(db_site, clock):
    bad, _ = ended_enrolment(db_site, "endsbadly", clock)
    good, user = ended_enrolment(db_site, "endsuspended", clock)
    with db_site.atomic(), pytest.raises(EnrolkitError) as error:
        enforce_end_dates(db_site.site)
    assert "endsbadly: expiry action 'explode' is not one of unenrol" in str(error.value)
    assert status(db_site, good, user) == SUSPENDED


def test_the_site_setting_expiry_action_still_decides_for_a_method_that_declares_it(db_site):
    manual = db_site.plugins.method("manual")
    assert manual.expiry_action(db_site.site) == UNENROL  # the schema's default
    with db_site.atomic():
        db_site.set_method_settings("manual", {"expiry_action": "suspend"})
    assert manual.expiry_action(db_site.site) == SUSPEND


def test_the_old_helper_warns_and_gives_the_methods_answer(site):
    from enrolkit import expiry

    with pytest.warns(DeprecationWarning, match=r"method\(name\)\.expiry_action\(site\)"):
        assert expiry.expiry_action(site.site, "endsuspended") == SUSPEND
