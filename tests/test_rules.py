"""Rules: Moodle availability JSON, each built-in condition type, nesting and negation, refusal of
malformed rules, third-party types, explanations, and Python/SQL agreement (a property test)."""

from __future__ import annotations

import json
import types

import enrolkit
import pytest
from enrolkit import rules
from enrolkit.models import (
    Badge,
    BadgeAward,
    Cohort,
    CohortMember,
    Course,
    CourseCompletion,
    ProfileData,
    ProfileField,
    User,
)
from enrolkit.plugins import PluginError
from enrolkit.rules import ConditionType, RuleError
from enrolkit.rules.standard import PROFILE_OPS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

NOW = "2026-09-01T08:00:00Z"


def add_user(site, username, *, profile=None, badges=(), completed=(), cohorts=(), **fields):
    """A user with custom profile values, badge awards, completions and cohort memberships.
    ``completed`` maps a course shortname to timecompleted (or lists shortnames)."""
    user = User(username=username, email=f"{username}@example.org", **fields)
    site.session.add(user)
    site.session.flush()
    by = {
        "field": {f.shortname: f.id for f in site.session.scalars(select(ProfileField))},
        "badge": {b.name: b.id for b in site.session.scalars(select(Badge))},
        "course": {c.shortname: c.id for c in site.session.scalars(select(Course))},
        "cohort": {c.idnumber: c.id for c in site.session.scalars(select(Cohort))},
    }
    for name, value in (profile or {}).items():
        site.session.add(ProfileData(user_id=user.id, field_id=by["field"][name], value=value))
    for name in badges:
        site.session.add(BadgeAward(badge_id=by["badge"][name], user_id=user.id))
    completed = (
        completed if isinstance(completed, dict) else dict.fromkeys(completed, 1_700_000_000)
    )
    for shortname, when in completed.items():
        site.session.add(
            CourseCompletion(user_id=user.id, course_id=by["course"][shortname], timecompleted=when)
        )
    for idnumber in cohorts:
        site.session.add(CohortMember(cohort_id=by["cohort"][idnumber], user_id=user.id))
    site.session.flush()
    return user


def add_catalog(site, fields=(), badges=(), courses=(), cohorts=()):
    site.session.add_all(ProfileField(shortname=name, name=name) for name in fields)
    site.session.add_all(Badge(name=name) for name in badges)
    site.session.add_all(Course(shortname=name, fullname=name) for name in courses)
    site.session.add_all(Cohort(idnumber=name, name=name) for name in cohorts)
    site.session.flush()


def matching(site, rule_data) -> set[str]:
    """The usernames the rule selects, asserting that Python and SQL agree."""
    rule = rules.parse(rule_data, site.plugins.conditions)
    users = site.session.scalars(select(User)).all()
    in_python = {user.username for user in users if rule.matches(site, user)}
    in_sql = set(site.session.scalars(select(User.username).where(rule.sql(site))))
    assert in_python == in_sql, f"Python {sorted(in_python)} != SQL {sorted(in_sql)}"
    return in_python


def all_of(*conditions):
    return {"op": "&", "c": list(conditions)}


def profile(op, v=None, *, sf=None, cf=None):
    node = {"type": "profile", "op": op}
    node.update({"sf": sf} if sf else {"cf": cf})
    if v is not None:
        node["v"] = v
    return node


@pytest.fixture
def people(db_site, clock):
    """Five people whose department and custom 'campus' field cover every profile operator."""
    add_catalog(db_site, fields=("campus", "unused"))
    add_user(db_site, "ann", department="Sales", profile={"campus": "North"})
    add_user(db_site, "bob", department="Pre-Sales", profile={"campus": "Northeast"})
    add_user(db_site, "cy", department="")
    add_user(db_site, "dee", department="sales", profile={"campus": "north"})
    add_user(db_site, "ed", department="0", profile={"campus": ""})
    return db_site


EVERYONE = {"ann", "bob", "cy", "dee", "ed"}


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("isequalto", "Sales", {"ann"}),
        ("contains", "Sales", {"ann", "bob"}),
        ("contains", "", EVERYONE),
        ("doesnotcontain", "Sales", {"cy", "dee", "ed"}),
        ("doesnotcontain", "", EVERYONE),
        ("startswith", "Sal", {"ann"}),
        ("startswith", "", EVERYONE),
        ("endswith", "Sales", {"ann", "bob"}),
        ("endswith", "", EVERYONE),
        ("isempty", None, {"cy"}),
        ("isnotempty", None, {"ann", "bob", "dee", "ed"}),
    ],
)
def test_profile_standard_field_operators_are_case_sensitive(people, op, value, expected):
    assert matching(people, all_of(profile(op, value, sf="department"))) == expected


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("isequalto", "North", {"ann"}),
        ("startswith", "North", {"ann", "bob"}),
        ("endswith", "east", {"bob"}),
        ("contains", "orth", {"ann", "bob", "dee"}),
        ("doesnotcontain", "North", {"cy", "dee", "ed"}),
        # No row for the field counts as an empty value.
        ("isempty", None, {"cy", "ed"}),
        ("isnotempty", None, {"ann", "bob", "dee"}),
    ],
)
def test_profile_custom_field_operators(people, op, value, expected):
    assert matching(people, all_of(profile(op, value, cf="campus"))) == expected


SMALL_VALUES = ("", "a", "A", "aa", "aA", "Aa", "AA", "aé")


def test_profile_operators_agree_in_python_and_sql_on_every_small_value(db_site):
    """Exhaustive over a small alphabet: every operator, every value, standard and custom field
    (with and without a stored row), so case, empty values and ends are all compared."""
    add_catalog(db_site, fields=("campus",))
    for i, value in enumerate(SMALL_VALUES):
        add_user(db_site, f"s{i}", department=value, profile={"campus": value})
    add_user(db_site, "norow", department="a")
    for op in PROFILE_OPS:
        for wanted in (None,) if op in ("isempty", "isnotempty") else SMALL_VALUES:
            for field in ({"sf": "department"}, {"cf": "campus"}):
                matching(db_site, all_of(profile(op, wanted, **field)))


def test_an_unknown_custom_field_fails_and_its_negation_passes(people):
    assert matching(people, all_of(profile("isempty", cf="nosuch"))) == set()
    assert matching(people, {"op": "!&", "c": [profile("isempty", cf="nosuch")]}) == EVERYONE
    # A field that exists but that nobody filled in is empty for everyone.
    assert matching(people, all_of(profile("isempty", cf="unused"))) == EVERYONE


def test_date_from_and_until_compare_with_now(people, clock):
    now = clock.now()
    assert matching(people, all_of({"type": "date", "d": ">=", "t": now})) == EVERYONE
    assert matching(people, all_of({"type": "date", "d": ">=", "t": now + 1})) == set()
    assert matching(people, all_of({"type": "date", "d": "<", "t": now})) == set()
    assert matching(people, all_of({"type": "date", "d": "<", "t": now + 1})) == EVERYONE
    clock.advance(10)
    assert matching(people, all_of({"type": "date", "d": "<", "t": now + 1})) == set()


@pytest.fixture
def achievers(db_site, clock):
    add_catalog(
        db_site, badges=("First aid", "Fire"), courses=("intro", "advanced"), cohorts=("staff",)
    )
    add_user(db_site, "ann", badges=("First aid",), completed=("intro",), cohorts=("staff",))
    add_user(db_site, "bob", badges=("Fire",), completed={"intro": 0, "advanced": 1_700_000_000})
    add_user(db_site, "cy", lang="fr", auth="ldap")
    return db_site


def test_badge_by_name_or_id(achievers):
    fire = achievers.session.scalar(select(Badge.id).where(Badge.name == "Fire"))
    assert matching(achievers, all_of({"type": "badge", "id": "First aid"})) == {"ann"}
    assert matching(achievers, all_of({"type": "badge", "id": fire})) == {"bob"}
    assert matching(achievers, all_of({"type": "badge", "id": "Nope"})) == set()
    assert matching(achievers, all_of({"type": "badge", "id": 9999})) == set()
    assert matching(achievers, {"op": "!|", "c": [{"type": "badge", "id": "Nope"}]}) == {
        "ann",
        "bob",
        "cy",
    }


def test_completion_needs_a_completion_time(achievers):
    # bob's row for intro has timecompleted 0: in progress, not completed.
    assert matching(achievers, all_of({"type": "completion", "course": "intro"})) == {"ann"}
    assert matching(achievers, all_of({"type": "completion", "course": "advanced"})) == {"bob"}
    assert matching(achievers, all_of({"type": "completion", "course": "nope"})) == set()


def test_cohort_language_and_auth(achievers):
    assert matching(achievers, all_of({"type": "cohort", "id": "staff"})) == {"ann"}
    assert matching(achievers, all_of({"type": "cohort", "id": "nope"})) == set()
    assert matching(achievers, all_of({"type": "language", "id": "fr"})) == {"cy"}
    assert matching(achievers, all_of({"type": "language", "id": "FR"})) == set()
    assert matching(achievers, all_of({"type": "auth", "id": "ldap"})) == {"cy"}
    assert matching(achievers, all_of({"type": "auth", "id": "manual"})) == {"ann", "bob"}


def test_nesting_and_negation_follow_moodle(achievers):
    badge = {"type": "badge", "id": "First aid"}
    cohort = {"type": "cohort", "id": "staff"}
    intro = {"type": "completion", "course": "intro"}
    fire = {"type": "badge", "id": "Fire"}
    assert matching(achievers, {"op": "&", "c": [badge, fire]}) == set()
    assert matching(achievers, {"op": "|", "c": [badge, fire]}) == {"ann", "bob"}
    # "!&" is NOT (all of), "!|" is NOT (any of): negation of the whole group.
    assert matching(achievers, {"op": "!&", "c": [badge, fire]}) == {"ann", "bob", "cy"}
    assert matching(achievers, {"op": "!&", "c": [badge, cohort]}) == {"bob", "cy"}
    assert matching(achievers, {"op": "!|", "c": [badge, fire]}) == {"cy"}
    nested = {"op": "|", "c": [{"op": "&", "c": [badge, intro]}, {"op": "!|", "c": [fire, cohort]}]}
    assert matching(achievers, nested) == {"ann", "cy"}
    twice = {"op": "!&", "c": [{"op": "!|", "c": [badge, fire]}]}
    assert matching(achievers, twice) == {"ann", "bob"}


@pytest.mark.parametrize("empty", [None, "", "  ", {}, {"op": "&", "c": []}, {"op": "!|", "c": []}])
def test_the_empty_rule_matches_everyone(achievers, empty):
    rule = rules.parse(empty, achievers.plugins.conditions)
    assert rule.is_empty
    assert matching(achievers, empty) == {"ann", "bob", "cy"}


def test_moodle_json_round_trips_with_show_flags(site):
    moodle = (
        '{"op":"&","showc":[true,false],"c":[{"type":"profile","sf":"department",'
        '"op":"isequalto","v":"Sales"},{"op":"|","show":true,"c":[{"type":"profile",'
        '"cf":"campus","op":"startswith","v":"North"},{"type":"date","d":"<","t":1790000000}]}]}'
    )
    rule = rules.parse(moodle, site.plugins.conditions)
    exported = rule.to_json()
    assert exported["showc"] == [True, True]
    assert "show" not in exported["c"][1]
    assert exported["c"][1]["c"][0] == {
        "type": "profile",
        "cf": "campus",
        "op": "startswith",
        "v": "North",
    }
    assert rules.parse(json.dumps(exported), site.plugins.conditions) == rule
    assert rules.parse({"op": "|", "c": []}, site.plugins.conditions).to_json() == {
        "op": "|",
        "c": [],
        "show": True,
    }


DEPT = {"type": "profile", "sf": "department", "op": "isequalto", "v": "IT"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "rule: not valid JSON"),
        ("[1]", "rule: must be a JSON object with 'op' and 'c', not a list"),
        (DEPT, "rule: must be a group with 'op' and 'c'"),
        ({"c": []}, "op: missing"),
        ({"op": "and", "c": []}, "op: unknown operator 'and'"),
        ({"op": "&", "c": {}}, "c: must be a list of conditions, not an object"),
        ({"op": "&"}, "c: must be a list of conditions, not null"),
        ({"op": "&", "c": [], "hide": 1}, "hide: unknown key"),
        ({"op": "&", "c": [DEPT, 3]}, "c[1]: must be an object"),
        ({"op": "&", "c": [DEPT, {"op": "&", "c": []}]}, "c[1].c: an empty group"),
        (
            {"op": "&", "c": [DEPT, {"op": "|", "c": [{"op": "foo", "c": [DEPT]}]}]},
            "c[1].c[0].op: unknown operator 'foo'",
        ),
        (
            {"op": "&", "c": [DEPT, {"op": "|", "c": [{"type": "grade", "id": 3}]}]},
            "c[1].c[0].type: unknown condition type 'grade' (types: auth, badge,",
        ),
        ({"op": "&", "c": [{"type": 7}]}, "c[0].type: must be a string"),
        ({"op": "&", "c": [{**DEPT, "op": "foo"}]}, "c[0].op: unknown operator 'foo'"),
        ({"op": "&", "c": [{**DEPT, "sf": "shoe"}]}, "c[0].sf: unknown standard field 'shoe'"),
        ({"op": "&", "c": [{**DEPT, "cf": "campus"}]}, "c[0]: give exactly one of 'sf'"),
        ({"op": "&", "c": [{**DEPT, "v": 3}]}, "c[0].v: isequalto needs the value"),
        (
            {"op": "&", "c": [{**DEPT, "op": "isempty"}]},
            "c[0].v: isempty takes no value; remove 'v'",
        ),
        ({"op": "&", "c": [{**DEPT, "value": "IT"}]}, "c[0].value: unknown key"),
        ({"op": "&", "c": [{"type": "date", "d": ">", "t": 1}]}, "c[0].d: unknown direction"),
        ({"op": "&", "c": [{"type": "date", "d": "<", "t": "1"}]}, "c[0].t: give the time"),
        ({"op": "&", "c": [{"type": "date", "d": "<", "t": True}]}, "c[0].t: give the time"),
        ({"op": "&", "c": [{"type": "badge", "id": 0}]}, "c[0].id: give the badge's name"),
        ({"op": "&", "c": [{"type": "badge"}]}, "c[0].id: give the badge's name"),
        ({"op": "&", "c": [{"type": "completion", "cm": 4, "e": 1}]}, "c[0].cm: activity"),
        ({"op": "&", "c": [{"type": "completion", "course": ""}]}, "c[0].course: give"),
        ({"op": "&", "c": [{"type": "cohort", "id": 5}]}, "c[0].id: give the cohort's"),
        ({"op": "&", "c": [{"type": "language"}]}, "c[0].id: give the language code"),
        ({"op": "&", "c": [{"type": "auth", "id": " "}]}, "c[0].id: give the authentication"),
    ],
)
def test_malformed_rules_are_refused_with_the_json_path(site, data, message):
    data = data if isinstance(data, str) else json.dumps(data)
    with pytest.raises(RuleError) as caught:
        rules.parse(data, site.plugins.conditions)
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, enrolkit.EnrolkitError)


def test_deep_nesting_is_refused(site):
    node = DEPT
    for _ in range(30):
        node = {"op": "&", "c": [node]}
    with pytest.raises(RuleError, match=r"nested more than 20 deep"):
        rules.parse(node, site.plugins.conditions)


class EmailDomain(ConditionType):
    """A third party's condition: the user's email is at a domain (any case)."""

    type = "emaildomain"

    def parse(self, node, path):
        domain = node.get("domain")
        if not isinstance(domain, str) or "." not in domain:
            raise path.key("domain").error("give a domain such as example.org")
        return domain.lower()

    def evaluate(self, params, ctx):
        return ctx.user.email.lower().endswith("@" + params)

    def sql(self, params, ctx):
        return func.lower(User.email).endswith("@" + params, autoescape=True)

    def explain(self, params, ctx, passed):
        return f"email {ctx.user.email!r} is {'' if passed else 'not '}at {params}"


def condition_plugin(*condition_types) -> types.ModuleType:
    module = types.ModuleType("ektest_conditions")

    @enrolkit.hookimpl
    def register_conditions(register):
        for condition_type in condition_types:
            register(condition_type)

    module.register_conditions = register_conditions
    return module


def test_a_third_party_condition_type_works_in_python_sql_and_explain(make_runtime):
    runtime = make_runtime(plugins=(condition_plugin(EmailDomain()),))
    with runtime.site() as site:
        for name, email in (("ann", "ann@Example.org"), ("bob", "bob@other.org")):
            site.session.add(User(username=name, email=email, department="IT"))
        site.session.flush()
        rule_data = all_of({"type": "emaildomain", "domain": "EXAMPLE.org"}, DEPT)
        assert matching(site, rule_data) == {"ann"}
        rule = rules.parse(rule_data, site.plugins.conditions)
        bob = site.session.scalar(select(User).where(User.username == "bob"))
        assert "[fail] email 'bob@other.org' is not at example.org" in str(rule.explain(site, bob))
        with pytest.raises(RuleError, match=r"^c\[0\]\.domain: give a domain"):
            rules.parse(all_of({"type": "emaildomain", "domain": "x"}), site.plugins.conditions)


def test_a_type_name_taken_twice_stops_start_up(make_runtime):
    class FakeBadge(EmailDomain):
        type = "badge"

    with pytest.raises(PluginError, match="two plugins register the rule condition type 'badge'"):
        make_runtime(plugins=(condition_plugin(FakeBadge()),))


def test_explain_says_why_condition_by_condition(achievers):
    ann = achievers.session.scalar(select(User).where(User.username == "ann"))
    ann.department = "Sales"
    rule = rules.parse(
        all_of(
            DEPT,
            {
                "op": "!|",
                "c": [{"type": "badge", "id": "Fire"}, {"type": "language", "id": "fr"}],
            },
            {"type": "cohort", "id": "staff"},
            {"type": "completion", "course": "gone"},
        ),
        achievers.plugins.conditions,
    )
    explanation = rule.explain(achievers, ann)
    assert not explanation.passed
    assert str(explanation) == "\n".join(
        [
            "[fail] all of these:",
            "  [fail] department is 'Sales', expected 'IT'",
            "  [pass] none of these:",
            "    [fail] badge 'Fire' not awarded",
            "    [fail] language is 'en', expected 'fr'",
            "  [pass] member of cohort 'staff'",
            "  [fail] no course 'gone' exists",
        ]
    )
    data = explanation.to_json()
    assert data["op"] == "&" and data["passed"] is False
    assert data["children"][1] == {
        "passed": True,
        "type": "group",
        "path": "c[1]",
        "op": "!|",
        "summary": "none of these",
        "children": [
            {
                "passed": False,
                "type": "badge",
                "path": "c[1].c[0]",
                "reason": "badge 'Fire' not awarded",
            },
            {
                "passed": False,
                "type": "language",
                "path": "c[1].c[1]",
                "reason": "language is 'en', expected 'fr'",
            },
        ],
    }
    json.dumps(data)  # plain data all the way down
    everyone = rules.parse(None, achievers.plugins.conditions).explain(achievers, ann)
    assert str(everyone) == "[pass] no conditions: everyone matches"


@pytest.mark.parametrize(
    ("node", "reason"),
    [
        (
            profile("contains", "ale", sf="department"),
            "department is 'Sales', which contains 'ale'",
        ),
        (
            profile("doesnotcontain", "ale", sf="department"),
            "department is 'Sales', which contains 'ale'",
        ),
        (
            profile("startswith", "IT", sf="department"),
            "department is 'Sales', which does not start with 'IT'",
        ),
        (
            profile("endswith", "les", sf="department"),
            "department is 'Sales', which ends with 'les'",
        ),
        (profile("isempty", sf="department"), "department is 'Sales', expected empty"),
        (profile("isnotempty", cf="campus"), "profile_field_campus is empty, expected a value"),
        (profile("isempty", cf="nosuch"), "no custom profile field 'nosuch' exists"),
        ({"type": "date", "d": ">=", "t": 1790000000}, "it is 2026-09-01T08:00:00Z, before "),
        ({"type": "badge", "id": "Nope"}, "no badge 'Nope' exists"),
        ({"type": "completion", "course": "intro"}, "has not completed course 'intro'"),
        ({"type": "cohort", "id": "staff"}, "not a member of cohort 'staff'"),
        ({"type": "auth", "id": "ldap"}, "auth is 'manual', expected 'ldap'"),
    ],
)
def test_each_type_explains_a_result(achievers, node, reason):
    add_catalog(achievers, fields=("campus",))
    user = add_user(achievers, "sal", department="Sales")
    explanation = rules.parse(all_of(node), achievers.plugins.conditions).explain(achievers, user)
    assert explanation.children[0].summary.startswith(reason)


def test_problems_list_names_the_site_lacks(achievers):
    rule = rules.parse(
        all_of(
            {"type": "badge", "id": "Fire"},
            {"op": "|", "c": [{"type": "badge", "id": "Nope"}, {"type": "badge", "id": 9999}]},
            {"type": "completion", "course": "gone"},
            {"type": "cohort", "id": "staff"},
            {"type": "cohort", "id": "ghosts"},
            profile("isempty", cf="nosuch"),
        ),
        achievers.plugins.conditions,
    )
    assert rule.problems(achievers) == [
        "c[1].c[0]: no badge 'Nope'",
        "c[1].c[1]: no badge #9999",
        "c[2]: no course 'gone'",
        "c[4]: no cohort 'ghosts'",
    ]
    # A custom profile field is defined by the admin beforehand (Moodle offers only existing
    # ones): its absence is an error that refuses the save, naming the fields there are.
    assert rule.errors(achievers) == [
        "c[5]: unknown custom profile field 'nosuch' (custom fields: none yet: add one under "
        "Site administration, Profile fields)"
    ]


def test_prefilter_lists_required_standard_field_equalities(site):
    conditions = site.plugins.conditions
    rule = rules.parse(
        all_of(
            DEPT,
            {"op": "&", "c": [{"type": "language", "id": "fr"}, {"type": "badge", "id": "X"}]},
            {"op": "|", "c": [{"type": "auth", "id": "ldap"}, {"type": "auth", "id": "cas"}]},
            {"op": "!&", "c": [profile("isequalto", "Paris", sf="city")]},
            profile("startswith", "A", sf="institution"),
        ),
        conditions,
    )
    assert rule.prefilter() == (("department", "IT"), ("lang", "fr"))
    assert rules.parse({"op": "|", "c": [DEPT]}, conditions).prefilter() == ()


def test_one_user_check_costs_a_few_queries_whatever_the_rule_size(achievers):
    add_catalog(achievers, fields=("campus", "level"))
    ann = achievers.session.scalar(select(User).where(User.username == "ann"))
    # "any of" conditions that all fail for ann: every one of them is evaluated.
    failing = [
        {"type": kind, key: value}
        for kind, key, values in (
            ("badge", "id", ("Fire", "Nope", 9999)),
            ("cohort", "id", ("other", "third")),
            ("completion", "course", ("advanced", "gone")),
        )
        for value in values
    ]
    failing += [
        profile("isnotempty", cf="campus"),
        profile("isnotempty", cf="level"),
        profile("isempty", cf="nosuch"),
        DEPT,
    ]
    rule = rules.parse({"op": "|", "c": failing}, achievers.plugins.conditions)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    engine = achievers.session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert not rule.matches(achievers, ann)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # badges, cohorts, completions, custom fields: one query each.
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4


# --- the property: SQL and Python agree --------------------------------------------------------

TEXT = st.text(alphabet="aAé", max_size=3)
FIELDS = ("department", "institution", "city")
LANGS = ("en", "fr", "de")
AUTHS = ("manual", "ldap")
BADGES = ("b1", "b2")
COURSES = ("k1", "k2")
COHORTS = ("h1", "h2")
CUSTOM = ("campus", "level")


def people_strategy():
    person = st.fixed_dictionaries(
        {
            **{field: TEXT for field in FIELDS},
            "lang": st.sampled_from(LANGS),
            "auth": st.sampled_from(AUTHS),
            "profile": st.dictionaries(st.sampled_from(CUSTOM), TEXT),
            "badges": st.sets(st.sampled_from(BADGES)),
            "completed": st.dictionaries(st.sampled_from(COURSES), st.sampled_from([0, 1_000])),
            "cohorts": st.sets(st.sampled_from(COHORTS)),
        }
    )
    return st.lists(person, min_size=2, max_size=8)


@st.composite
def profile_nodes(draw):
    node = {"type": "profile"}
    if draw(st.booleans()):
        node["sf"] = draw(st.sampled_from((*FIELDS, "lang", "auth")))
    else:
        node["cf"] = draw(st.sampled_from((*CUSTOM, "nosuch")))
    node["op"] = op = draw(st.sampled_from(PROFILE_OPS))
    if op not in ("isempty", "isnotempty"):
        node["v"] = draw(TEXT)
    return node


def rule_strategy(now: int, badge_ids: list[int]):
    def one(kind, key, values):
        return st.builds(lambda value: {"type": kind, key: value}, st.sampled_from(values))

    leaves = st.one_of(
        # Profile nodes hold the most behaviour (seven operators, two kinds of field): twice
        # the weight of the other types.
        profile_nodes(),
        profile_nodes(),
        st.builds(
            lambda d, t: {"type": "date", "d": d, "t": t},
            st.sampled_from((">=", "<")),
            st.integers(now - 1, now + 1),
        ),
        one("badge", "id", (*BADGES, "nope", *badge_ids, 999)),
        one("completion", "course", (*COURSES, "nope")),
        one("cohort", "id", (*COHORTS, "nope")),
        one("language", "id", LANGS),
        one("auth", "id", AUTHS),
    )
    ops = st.sampled_from(("&", "|", "!&", "!|"))

    def group(children):
        return st.builds(
            lambda op, c: {"op": op, "c": c}, ops, st.lists(children, min_size=1, max_size=3)
        )

    tree = st.recursive(leaves, group, max_leaves=6)
    return st.builds(lambda op, c: {"op": op, "c": c}, ops, st.lists(tree, min_size=1, max_size=5))


def subtrees(group):
    """Each group of the tree, and each condition wrapped in a group of its own."""
    for child in group["c"]:
        yield from subtrees(child) if "c" in child else [{"op": "&", "c": [child]}]
    yield group


def test_sql_and_python_evaluation_agree_for_every_user(db_site, clock):
    site = db_site
    add_catalog(site, fields=CUSTOM, badges=BADGES, courses=COURSES, cohorts=COHORTS)
    site.session.commit()
    badge_ids = list(site.session.scalars(select(Badge.id)))
    conditions = site.plugins.conditions

    @settings(
        max_examples=50,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(people=people_strategy(), rule_data=rule_strategy(clock.now(), badge_ids))
    def check(people, rule_data):
        try:
            users = [add_user(site, f"p{i}", **person) for i, person in enumerate(people)]
            # Every node on its own as well as the whole rule: a wrong condition deep in a tree
            # often does not change the whole rule's result.
            for part in subtrees(rule_data):
                rule = rules.parse(json.dumps(part), conditions)
                in_sql = set(site.session.scalars(select(User.id).where(rule.sql(site))))
                for user in users:
                    expected = user.id in in_sql
                    assert rule.matches(site, user) is expected, (user.username, part)
                    assert rule.explain(site, user).passed is expected
        finally:
            site.session.rollback()

    check()
