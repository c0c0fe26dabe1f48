"""The instance lifecycle on a real database (SQLite, and PostgreSQL when configured): a disabled
instance syncs nothing, the ``instance_changed`` hook hears every create, update, enable, disable
and delete, ``method_settings_changed`` hears real changes of site settings, and role settings
name existing roles."""

from __future__ import annotations

import pytest
from enrolkit import catalog, hookimpl
from enrolkit.enrolments import add_instance, delete_instance, update_instance
from enrolkit.errors import EnrolkitError, Refused
from enrolkit.testing import SiteFactory


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    @hookimpl
    def instance_changed(self, change):
        self.calls.append(("instance", change.method, change.kind, change.enabled))

    @hookimpl
    def method_settings_changed(self, method, names):
        self.calls.append(("settings", method, names))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def rsite(any_db, make_runtime, recorder):
    runtime = make_runtime(plugins=(recorder,), url=any_db)
    with runtime.site() as site:
        yield SiteFactory(site)


def test_hook_instance_changed_on_create_update_enable_disable_delete(rsite, recorder):
    course = rsite.course("C1")
    instance = add_instance(rsite.site, course, "manual", {"enabled": "off"}).instance
    assert instance.enabled is False
    update_instance(rsite.site, instance, {"name": "Late joiners"})
    update_instance(rsite.site, instance, {"enabled": "on"})
    update_instance(rsite.site, instance, {"enabled": "off"})
    update_instance(rsite.site, instance, {"name": "Not now"}, dry_run=True)
    delete_instance(rsite.site, instance)
    assert [c for c in recorder.calls if c[0] == "instance"] == [
        ("instance", "manual", "created", False),
        ("instance", "manual", "updated", False),
        ("instance", "manual", "enabled", True),
        ("instance", "manual", "disabled", False),
        ("instance", "manual", "deleted", False),
    ]


def test_hook_method_settings_changed_only_for_values_that_changed(rsite, recorder):
    rsite.set_method_settings("manual", {"expiry_action": "suspend"})
    rsite.set_method_settings("manual", {"expiry_action": "suspend"})
    assert [c for c in recorder.calls if c[0] == "settings"] == [
        ("settings", "manual", ("expiry_action",))
    ]


def test_a_disabled_instance_cannot_backfill(rsite):
    course = rsite.course("C1")
    with pytest.raises(Refused, match="disabled instance enrols nobody"):
        add_instance(rsite.site, course, "manual", {"enabled": "off"}, backfill=True)


def test_moving_a_category_moves_its_subtree_and_tells_the_methods(rsite, recorder):
    course = rsite.course("PHY1", category="Sciences / Physics")
    rsite.category("Archive")
    physics = rsite.category("Sciences / Physics")
    catalog.move_category(rsite.site, physics, rsite.category("Archive"))
    assert physics.path.startswith(rsite.category("Archive").path)
    assert physics.depth == 2
    with pytest.raises(EnrolkitError, match="into itself"):
        catalog.move_category(rsite.site, rsite.category("Archive"), physics)
    assert course.category_id == physics.id
