"""Course meta links on a real database (SQLite, and PostgreSQL when ENROLKIT_TEST_POSTGRES_URL is
set): what a target holds after a link is made and the source changes, who may link, which links
are refused, the site settings and the hourly repair."""

from __future__ import annotations

import enrol_meta
import pytest
from enrol_meta.sync import full_sync
from enrolkit import Change, EnrolMethod, Plan, hookimpl, lookup, roles
from enrolkit.enrolments import (
    add_instance,
    enrol_manually,
    ensure_instance,
    is_enrolled,
    unenrol_manually,
    update_instance,
)
from enrolkit.errors import Refused, SettingsError
from enrolkit.models import (
    ACTIVE,
    COURSE,
    EnrolInstance,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from enrolkit.testing import SiteFactory
from sqlalchemy import delete, func, select

T1, T2, T3, T4 = 1_790_000_000, 1_795_000_000, 1_800_000_000, 1_805_000_000


class ExtraMethod(EnrolMethod):
    """A second source method, so a user can hold two enrolments in the source."""

    name = "extra"
    title = "Extra source"
    enabled_by_default = True

    def default_role(self, site):
        return None


class ExtraPlugin:
    @hookimpl
    def register_methods(self, register):
        register(ExtraMethod())


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(plugins=(enrol_meta, ExtraPlugin()), url=any_db)


@pytest.fixture
def msite(runtime):
    """A site (acting as the CLI operator) with meta links enabled."""
    with runtime.site() as site:
        site.set_method_enabled("meta", True)
        site.session.commit()
        yield SiteFactory(site)


def mirrored(site, course) -> dict[str, tuple]:
    """username -> (status, timestart, timeend, sorted roles) of the course's meta enrolments."""
    link_ids = select(EnrolInstance.id).where(
        EnrolInstance.course_id == course.id, EnrolInstance.method == "meta"
    )
    roles_of: dict[int, list[str]] = {}
    for user_id, shortname in site.session.execute(
        select(RoleAssignment.user_id, Role.shortname)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(RoleAssignment.component == "enrol_meta", RoleAssignment.itemid.in_(link_ids))
    ):
        roles_of.setdefault(user_id, []).append(shortname)
    return {
        username: (
            "active" if status == ACTIVE else "suspended",
            start,
            end,
            sorted(roles_of.get(user_id, [])),
        )
        for user_id, username, status, start, end in site.session.execute(
            select(User.id, User.username, UserEnrolment.status, UserEnrolment.timestart, UserEnrolment.timeend)
            .join(UserEnrolment, UserEnrolment.user_id == User.id)
            .where(UserEnrolment.instance_id.in_(link_ids))
        )
    }  # fmt: skip


def count(site, model, *where) -> int:
    return site.session.scalar(select(func.count()).select_from(model).where(*where))


def link(site, target, source, **settings) -> EnrolInstance:
    raw = {"source": source.shortname, **settings}
    return add_instance(site.site, target, "meta", raw).instance


def test_meta_starts_disabled_on_a_fresh_site(runtime):
    with runtime.site() as site:
        factory = SiteFactory(site)
        assert not site.method_enabled("meta")
        with pytest.raises(Refused, match="enrolkit method enable meta"):
            add_instance(
                site, factory.course("B"), "meta", {"source": factory.course("A").shortname}
            )


def test_fifty_users_and_a_teacher_are_mirrored_and_unenrolling_one_removes_them(msite):
    a, b = msite.course("A"), msite.course("B")
    users = msite.users(50)
    teacher = msite.role("editingteacher")
    for user in users[1:]:
        enrol_manually(msite.site, user, a)
    enrol_manually(msite.site, users[0], a, role=teacher)

    link(msite, b, a)
    expected = {u.username: ("active", 0, 0, ["student"]) for u in users[1:]}
    expected["u1"] = ("active", 0, 0, ["editingteacher"])
    assert mirrored(msite, b) == expected

    unenrol_manually(msite.site, users[5], a)
    assert not is_enrolled(msite.site, users[5].id, b.id)
    assert mirrored(msite, b)["u6"] == ("suspended", 0, 0, [])  # the default: suspend, no roles
    assert len([v for v in mirrored(msite, b).values() if v[0] == "active"]) == 49

    msite.set_method_settings("meta", {"removal": "unenrol"})
    unenrol_manually(msite.site, users[6], a)
    assert "u7" not in mirrored(msite, b)


def test_status_and_dates_aggregate_the_source_enrolments(msite):
    a, b = msite.course("A"), msite.course("B")
    ann, bob, cem = msite.users(3)
    extra = ensure_instance(msite.site, a, "extra")
    enrol_manually(msite.site, ann, a, timestart=T2, timeend=T3)
    msite.engine.apply(Plan(extra.id, "t", changes=[Change(ann.id, timestart=T1, timeend=T2)]))
    enrol_manually(msite.site, bob, a, timestart=T2, timeend=T3)
    msite.engine.apply(Plan(extra.id, "t", changes=[Change(bob.id, timestart=T3, timeend=0)]))
    enrol_manually(msite.site, cem, a, timestart=T2, timeend=T4)
    link(msite, b, a)
    assert mirrored(msite, b) == {
        "u1": ("active", T1, T3, ["student"]),
        "u2": ("active", T2, 0, ["student"]),  # an open end wins
        "u3": ("active", T2, T4, ["student"]),
    }
    # A suspended enrolment no longer counts while another is active...
    msite.engine.apply(Plan(extra.id, "t", changes=[Change(bob.id, op="suspend")]))
    assert mirrored(msite, b)["u2"] == ("active", T2, T3, ["student"])
    # ... and with none active the mirror is suspended and, by default, loses its roles.
    manual = ensure_instance(msite.site, a, "manual")
    msite.engine.apply(Plan(manual.id, "t", changes=[Change(bob.id, op="suspend")]))
    assert mirrored(msite, b)["u2"] == ("suspended", T2, 0, [])
    # A disabled source instance counts as not active, at once (the full sync finds no drift).
    update_instance(msite.site, manual, {"enabled": "off"})
    assert "0 re-synced" in full_sync(msite.site)
    assert mirrored(msite, b) == {
        "u1": ("active", T1, T2, ["student"]),
        "u2": ("suspended", T2, 0, []),
        "u3": ("suspended", T2, T4, []),
    }


def test_source_roles_follow_at_once(msite):
    a, b = msite.course("A"), msite.course("B")
    ann = msite.user("ann")
    enrol_manually(msite.site, ann, a)
    link(msite, b, a)
    teacher = msite.role("teacher")
    roles.assign(msite.site, teacher, ann, COURSE, a.id)
    assert mirrored(msite, b)["ann"][3] == ["student", "teacher"]
    roles.unassign(msite.site, teacher, ann, COURSE, a.id)
    assert mirrored(msite, b)["ann"][3] == ["student"]
    # A role given in the target by other means is left alone.
    roles.assign(msite.site, msite.role("manager"), ann, COURSE, b.id)
    assert full_sync(msite.site) == "1 instance(s) checked, 0 re-synced"
    assert (
        msite.session.scalar(
            select(RoleAssignment.component).where(
                RoleAssignment.instanceid == b.id, RoleAssignment.component == ""
            )
        )
        == ""
    )


def test_nosyncroles_and_syncall(msite):
    a, b = msite.course("A"), msite.course("B")
    ann, bob, cem = msite.users(3)
    enrol_manually(msite.site, ann, a)
    enrol_manually(msite.site, bob, a, role=msite.role("manager"))
    extra = ensure_instance(msite.site, a, "extra")
    msite.engine.apply(Plan(extra.id, "no role", changes=[Change(cem.id)]))
    msite.set_method_settings("meta", {"nosyncroles": "manager", "syncall": "off"})
    assert msite.method_settings("meta")["nosyncroles"] == ["manager"]
    link(msite, b, a)
    assert mirrored(msite, b) == {"u1": ("active", 0, 0, ["student"])}
    msite.set_method_settings("meta", {"syncall": "on"})
    full_sync(msite.site)
    assert mirrored(msite, b) == {
        "u1": ("active", 0, 0, ["student"]),
        "u2": ("active", 0, 0, []),
        "u3": ("active", 0, 0, []),
    }
    with pytest.raises(SettingsError, match="not a role shortname"):
        msite.set_method_settings("meta", {"nosyncroles": "stu dent"})


def test_several_links_per_target_and_no_chaining(msite):
    a1, a2, b, c = (msite.course(name) for name in ("A1", "A2", "B", "C"))
    ann, bob = msite.users(2)
    enrol_manually(msite.site, ann, a1)
    enrol_manually(msite.site, bob, a2)
    link(msite, b, a1)
    link(msite, b, a2)
    link(msite, c, b)
    assert set(mirrored(msite, b)) == {"u1", "u2"}
    # B's users came through links, and links mirror only the other methods' enrolments.
    assert mirrored(msite, c) == {}
    enrol_manually(msite.site, ann, b)
    assert mirrored(msite, c) == {"u1": ("active", 0, 0, ["student"])}


def test_refused_links(msite):
    a, b, c = (msite.course(name) for name in ("A", "B", "C"))
    link(msite, b, a)
    with pytest.raises(SettingsError, match="already links A"):
        link(msite, b, a)
    with pytest.raises(SettingsError, match="cannot be linked to itself"):
        link(msite, a, a)
    with pytest.raises(SettingsError, match="no course with shortname 'Z'"):
        add_instance(msite.site, a, "meta", {"source": "Z"})
    with pytest.raises(SettingsError, match="would close the cycle B -> A -> B"):
        link(msite, a, b)
    link(msite, c, b)
    with pytest.raises(SettingsError, match="would close the cycle C -> A -> B -> C"):
        link(msite, a, c)
    assert count(msite, EnrolInstance) == 2


def test_only_an_admin_or_a_teacher_of_the_source_may_link_it(runtime):
    with runtime.site() as site:
        f = SiteFactory(site)
        site.set_method_enabled("meta", True)
        a, b, other = f.course("A"), f.course("B"), f.course("OTHER")
        tina, tom, _ = f.user("tina"), f.user("tom"), f.user("root", siteadmin=True)
        roles.assign(site, f.role("editingteacher"), tina, COURSE, other.id)
        roles.assign(site, f.role("editingteacher"), tina, COURSE, b.id)
        roles.assign(site, f.role("teacher"), tom, COURSE, a.id)
        site.session.commit()
    with runtime.site(actor="tina") as site:
        with pytest.raises(
            Refused, match="tina may not link A: only a site admin or a teacher of A"
        ):
            add_instance(site, lookup.course(site.session, "B"), "meta", {"source": "A"})
    with runtime.site(actor="tom") as site:
        add_instance(site, lookup.course(site.session, "B"), "meta", {"source": "A"})
    with runtime.site(actor="root") as site:
        add_instance(site, lookup.course(site.session, "A"), "meta", {"source": "OTHER"})
    with runtime.site() as site:
        assert count(site, EnrolInstance, EnrolInstance.method == "meta") == 2


def test_manual_unenrol_in_the_target_is_refused(msite):
    a, b = msite.course("A"), msite.course("B")
    ann = msite.user("ann")
    enrol_manually(msite.site, ann, a)
    link(msite, b, a)
    with pytest.raises(Refused, match="mirrors the course A .*unenrol the user from A instead"):
        unenrol_manually(msite.site, ann, b)


def test_full_sync_repairs_what_no_hook_reported(msite):
    a, b = msite.course("A"), msite.course("B")
    ann, bob = msite.users(2)
    enrol_manually(msite.site, ann, a)
    enrol_manually(msite.site, bob, a)
    link(msite, b, a)
    manual = ensure_instance(msite.site, a, "manual")
    msite.session.execute(
        delete(UserEnrolment).where(UserEnrolment.instance_id == manual.id, UserEnrolment.user_id == ann.id)
    )  # fmt: skip
    msite.session.commit()
    assert full_sync(msite.site) == (
        "1 instance(s) checked, 1 re-synced: 1 suspended, 1 roles_removed"
    )
    assert mirrored(msite, b) == {
        "u1": ("suspended", 0, 0, []),
        "u2": ("active", 0, 0, ["student"]),
    }
    assert full_sync(msite.site) == "1 instance(s) checked, 0 re-synced"
    assert msite.plugins.tasks["meta_sync"].component == "enrol_meta"


def test_suspend_keeps_roles(msite):
    msite.set_method_settings("meta", {"removal": "suspend"})
    a, b = msite.course("A"), msite.course("B")
    ann = msite.user("ann")
    enrol_manually(msite.site, ann, a)
    link(msite, b, a)
    unenrol_manually(msite.site, ann, a)
    assert mirrored(msite, b) == {"ann": ("suspended", 0, 0, ["student"])}
