"""Instance and site settings: disabled on a fresh site, validated when saved (rule, templates,
window), defaults taken from the site settings; the prefilter slots a rule gives."""

from __future__ import annotations

import json

import enrol_autoenrol
import pytest
from autoenrol_helpers import ONBOARDING, profile, rule
from enrol_autoenrol.prefilter import slots
from enrolkit.enrolments import add_instance, update_instance
from enrolkit.errors import Refused, SettingsError
from enrolkit.rules import parse
from enrolkit.testing import SiteFactory


@pytest.fixture
def fresh(make_runtime):
    """A site with the plugin installed and left as a fresh site has it: disabled."""
    runtime = make_runtime(plugins=(enrol_autoenrol,))
    with runtime.site() as site:
        yield SiteFactory(site)


def test_a_fresh_site_has_auto_enrol_disabled(fresh):
    assert not fresh.method_enabled("autoenrol")
    with pytest.raises(Refused, match="enrolkit method enable autoenrol"):
        add_instance(fresh.site, fresh.course("C1"), "autoenrol", {})


def test_the_defaults_and_the_site_settings(ae):
    ae.set_method_settings("autoenrol", {"role": "teacher"})
    instance = ae.instance(ae.course("C1"), "autoenrol")
    assert instance.settings == {
        "mode": "view",
        "rule": "",
        "duration": 0,
        "enrolstart": 0,
        "enrolend": 0,
        "newenrols": True,
        "maxenrolled": 0,
        "group_template": "",
        "unenrol_on_mismatch": True,
        "removal": "site",
        "inactive_days": 0,
        "welcome": False,
        "welcome_template": "",
    }
    assert instance.role_id == ae.role("teacher").id
    method = ae.plugins.method("autoenrol")
    assert method.removal_action(ae.site, instance) == "suspend"
    ae.set_method_settings("autoenrol", {"removal": "unenrol"})
    assert method.removal_action(ae.site, instance) == "unenrol"  # 'site' follows the site
    update_instance(ae.site, instance, {"removal": "keep"})
    assert method.removal_action(ae.site, instance) == "keep"


def test_the_rule_is_stored_as_moodle_json(ae):
    instance = ae.instance(ae.course("C1"), "autoenrol", rule=rule(ONBOARDING))
    stored = instance.settings["rule"]
    assert json.loads(stored) == {**ONBOARDING, "showc": [True, True, True]}
    assert "Onboarding complété" in stored  # readable text, as Moodle stores it
    update_instance(ae.site, instance, {"duration": "60"})
    assert instance.settings["rule"] == stored
    update_instance(ae.site, instance, {"rule": ""})
    assert instance.settings["rule"] == ""


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"rule": "{not json"}, "rule: not valid JSON"),
        ({"rule": "[1]"}, "rule: must be a JSON object"),
        ({"rule": '{"op": "&", "c": [{"type": "profile", "sf": "department", "op": "is"}]}'},
         "rule: c[0].op: unknown operator 'is'"),
        ({"rule": '{"op": "&", "c": [{"type": "weather"}]}'}, "unknown condition type 'weather'"),
        ({"mode": "sometimes"}, "mode: Must be one of: login, view, confirm."),
        ({"removal": "delete"}, "removal: Must be one of: site, unenrol, suspend, keep."),
        ({"enrolstart": "2026-09-01", "enrolend": "2026-08-01"}, "enrolend: must come after"),
        ({"enrolstart": "next week"}, "enrolstart: 'next week' is not a time"),
        ({"duration": "-5"}, "duration: '-5' is not a duration; give seconds, 30m"),
        ({"duration": "3 months"}, "or ISO 8601 such as P2D"),
        ({"welcome_template": "Hello {{ user.nickname }}"}, "welcome_template: line 1"),
        ({"welcome_template": "Hello {% if %}"}, "welcome_template: line 1"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_when_saved_with_the_field_named(ae, settings, message):
    course = ae.course("C1")
    with pytest.raises(SettingsError) as caught:
        ae.instance(course, "autoenrol", **settings)
    assert message in str(caught.value)


def test_bad_site_settings_are_refused(ae):
    with pytest.raises(SettingsError, match="denied_url: give a path on this site"):
        ae.set_method_settings("autoenrol", {"denied_url": "https://evil.example"})
    with pytest.raises(SettingsError, match="denied: Must be one of"):
        ae.set_method_settings("autoenrol", {"denied": "shrug"})


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        (None, []),
        (ONBOARDING, [{("department", "IT"), ("department", "Support")}]),
        ({"op": "&", "c": [profile("department", "IT"), {"type": "language", "id": "fr"}]},
         [{("department", "IT")}, {("lang", "fr")}]),
        ({"op": "|", "c": [profile("city", "Lyon"), {"op": "&", "c": [profile("lang", "fr")]}]},
         [{("city", "Lyon"), ("lang", "fr")}]),
        ({"op": "|", "c": [profile("city", "Lyon"), {"type": "badge", "id": "X"}]}, []),
        ({"op": "!&", "c": [profile("city", "Lyon")]}, []),
        ({"op": "&", "c": [profile("campus", "North", custom=True)]},
         [{("profile_field_campus", "North")}]),
        ({"op": "|", "c": [profile("campus", "North", custom=True), profile("city", "Lyon")]},
         [{("profile_field_campus", "North"), ("city", "Lyon")}]),
        ({"op": "&", "c": [{"type": "profile", "sf": "city", "op": "startswith", "v": "L"}]}, []),
    ],
)  # fmt: skip
def test_the_prefilter_slots_of_a_rule(fresh, tree, expected):
    found = slots(parse(tree, fresh.plugins.conditions))
    assert [set(slot) for slot in found] == expected


def test_a_rule_naming_an_unknown_custom_field_is_refused_with_the_known_names(ae):
    from enrolkit.people import profile_field

    profile_field(ae.site, "team", create=True)
    profile_field(ae.site, "campus", create=True)
    bad = {"op": "&", "c": [profile("dept", "IT", custom=True)]}
    with pytest.raises(SettingsError) as caught:
        ae.instance(ae.course("C1"), "autoenrol", rule=json.dumps(bad))
    assert "unknown custom profile field 'dept' (custom fields: campus, team)" in str(caught.value)
    good = {"op": "&", "c": [profile("team", "IT", custom=True)]}
    assert ae.instance(ae.course("C2"), "autoenrol", rule=json.dumps(good)).settings["rule"]
