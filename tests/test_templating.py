"""User-written templates: welcome messages in the sandbox, group names in Python and SQL."""

from __future__ import annotations

import json
import time

import pytest
from enrolkit import people
from enrolkit.clock import parse_time
from enrolkit.models import Group, User
from enrolkit.templating import (
    DEFAULT_WELCOME,
    TemplateError,
    group_name_for,
    group_name_sql,
    render_group_name,
    render_welcome,
    validate_group_template,
    validate_welcome,
)
from sqlalchemy import select


def problems(source: str, **kwargs) -> list[str]:
    return [str(p) for p in validate_welcome(source, **kwargs)]


def welcome(site, source: str, **kwargs):
    user = kwargs.pop("user", None) or site.user("jean", firstname="Jean", lastname="Dupont")
    course = kwargs.pop("course", None) or site.course("MATH", fullname="Maths")
    return render_welcome(site, source, user=user, course=course, **kwargs)


# --- validation ----------------------------------------------------------------------------


def test_syntax_error_is_reported_with_its_line():
    assert problems("Hello\n{{ user.firstname }\n") == ["line 2: unexpected '}'"]
    assert problems("Hi\n{% if user.city %}\nyes\n") == [
        "line 3: Unexpected end of template. Jinja was looking for the following tags: "
        "'elif' or 'else' or 'endif'. The innermost block that needs to be closed is 'if'."
    ]


def test_unknown_variables_and_fields_are_reported_with_their_lines():
    source = (
        "Dear {{ user.firstname }},\n"
        "{{ nickname }}\n"
        "{{ user.nick }} in {{ course.fullname }}\n"
        "{{ user.profile.shoesize }} {{ user.profile_field_shoesize }} {{ user.profile.team }}\n"
        "{{ site.session }} {{ enrolment.role }}\n"
        "{{ user.firstname|shout }}\n"
    )
    assert problems(source, profile_fields={"team"}) == [
        "line 2: unknown variable 'nickname'",
        "line 3: user has no field 'nick' (fields: auth, city, country, department, email, "
        "firstname, fullname, idnumber, institution, lang, lastname, profile, username)",
        "line 4: no custom profile field 'shoesize'",
        "line 5: site has no field 'session' (fields: name, url)",
        "line 6: no filter named 'shout'",
    ]
    # Without the site's custom fields, any profile field is accepted.
    assert problems("{{ user.profile.shoesize }}{{ user.profile_field_x }}") == []


def test_every_documented_variable_is_accepted():
    source = """
    {{ user.username }} {{ user.firstname }} {{ user.lastname }} {{ user.fullname }}
    {{ user.email }} {{ user.idnumber }} {{ user.department }} {{ user.institution }}
    {{ user.city }} {{ user.country }} {{ user.lang }} {{ user.auth }}
    {{ user.profile.team }} {{ user.profile['team'] }} {{ user.profile_field_team }}
    {% for name, value in user.profile.items() %}{{ name }}={{ value }}{% endfor %}
    {{ course.shortname }} {{ course.fullname }} {{ course.idnumber }} {{ course.url }}
    {{ course.startdate }} {{ enrolment.role }} {{ enrolment.start }} {{ enrolment.end }}
    {{ site.name }} {{ site.url }} {{ coursename }} {{ fullname }} {{ firstname }}
    {{ lastname }} {{ email }} {{ profileurl }} {{ courselink }} {{ link }} {{ courserole }}
    {{ coursestartdate }} {{ completed_course.fullname }} {{ user.firstname|upper }}
    {% set n = namespace(k=0) %}{% for i in range(3) %}{{ loop.index }}{% endfor %}
    {% macro hello(who) %}Hello {{ who }}{% endmacro %}{{ hello(user.firstname) }}
    {{ user.city.upper() }} {{ DEFAULT }}
    """.replace("{{ DEFAULT }}", "")
    assert problems(source, extra_vars={"completed_course"}, profile_fields={"team"}) == []
    assert problems(DEFAULT_WELCOME) == []


def test_moodle_placeholders_work_and_are_checked(site):
    mail = welcome(site, "Dear {$a->fullname}, welcome to {$a->coursename}!")
    assert mail.text == "Dear Jean Dupont, welcome to Maths!"
    assert problems("Hi {$a->firstname}\n{$a->nickname}") == ["line 2: unknown variable 'nickname'"]


# --- rendering -----------------------------------------------------------------------------


def test_welcome_renders_real_user_course_and_enrolment(site):
    user = site.user(
        "jean", firstname="Jean", lastname="Dupont", department="Sales", city="Lyon", country="FR"
    )
    people.set_fields(site, user, {"profile_field_team": "Blue"})
    site.set_config("core", "site_url", "https://lms.example.org/")
    site.set_config("core", "site_name", "Example LMS")
    course = site.course("MATH", fullname="Maths & Stats", startdate=parse_time("2026-09-07"))
    source = (
        "Dear {{ firstname }} {{ lastname }} ({{ user.department }}, {{ user.city }}),\n"
        "team {{ user.profile.team }}/{{ user.profile_field_team }}.\n"
        "\n"
        "{{ coursename }} starts {{ course.startdate }}; you are {{ enrolment.role }}\n"
        "from {{ enrolment.start }} to {{ enrolment.end or 'the end' }}: {{ course.url }}\n"
        "{{ site.name }} {{ profileurl }} {{ extra }}"
    )
    mail = render_welcome(
        site,
        source,
        user=user,
        course=course,
        role=site.role("student"),
        timestart=parse_time("2026-09-01T10:00:00Z"),
        extra={"extra": "!"},
    )
    assert mail.subject == "Welcome to Maths & Stats"
    assert mail.text == (
        "Dear Jean Dupont (Sales, Lyon),\n"
        "team Blue/Blue.\n"
        "\n"
        "Maths & Stats starts 2026-09-07; you are Student\n"
        f"from 2026-09-01 to the end: https://lms.example.org/course/{course.id}\n"
        f"Example LMS https://lms.example.org/user/{user.id} !"
    )
    assert mail.html == (
        "<p>Dear Jean Dupont (Sales, Lyon),<br>\nteam Blue/Blue.</p>\n"
        "<p>Maths &amp; Stats starts 2026-09-07; you are Student<br>\n"
        "from 2026-09-01 to the end: "
        f'<a href="https://lms.example.org/course/{course.id}">'
        f"https://lms.example.org/course/{course.id}</a><br>\n"
        f'Example LMS <a href="https://lms.example.org/user/{user.id}">'
        f"https://lms.example.org/user/{user.id}</a> !</p>\n"
    )


def test_blank_source_sends_the_default_message(site):
    mail = welcome(site, "  \n")
    assert mail.text.startswith("Dear Jean Dupont,\n\nyou have been enrolled in the course")
    assert "http://127.0.0.1:5000/course/" in mail.text
    assert '<a href="http://127.0.0.1:5000/course/' in mail.html


def test_user_text_is_escaped_in_html_mail(site):
    user = site.user("eve", firstname="<script>alert(1)</script>", lastname="O'Hara & co")
    html_mail = welcome(site, "<p>Hello {{ user.firstname }} {{ lastname }}</p>", user=user)
    assert html_mail.html == (
        "<p>Hello &lt;script&gt;alert(1)&lt;/script&gt; O&#39;Hara &amp; co</p>"
    )
    assert html_mail.text == "Hello <script>alert(1)</script> O'Hara & co\n"
    text_mail = welcome(site, "Hello {{ user.firstname }}", user=user, course=site.course("C2"))
    assert text_mail.text == "Hello <script>alert(1)</script>"
    assert text_mail.html == "<p>Hello &lt;script&gt;alert(1)&lt;/script&gt;</p>\n"
    # Escaping cannot be switched off: no |safe filter, and {% autoescape %} is refused.
    assert problems("{{ user.firstname|safe }}") == ["line 1: no filter named 'safe'"]
    assert problems("<p>\n{% autoescape false %}{{ firstname }}{% endautoescape %}</p>") == [
        "line 2: autoescape cannot be changed"
    ]
    with pytest.raises(TemplateError, match="line 1: No filter named 'safe'"):
        welcome(site, "<p>{{ user.firstname|safe }}</p>", user=user, course=site.course("C3"))
    sneaky = welcome(
        site,
        "<p>{% autoescape false %}{{ user.firstname }}{% endautoescape %}</p>",
        user=user,
        course=site.course("C4"),
    )
    assert "<script>" not in sneaky.html


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ user.__init__.__globals__ }}",
    "{{ user.__class__.__init__.__globals__['os'] }}",
    "{{ user['__dict__'] }}",
    "{{ dict.mro()[1].__subclasses__() }}",
    "{{ ''.format.__globals__ }}",
    "{{ '{0.__class__}'.format(user) }}",
    "{{ self._TemplateReference__context }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ user.profile.__class__.__base__ }}",
    "{{ user.firstname.replace('J', 'K') }}",
    "{% include 'config.py' %}",
    "{% import 'os' as os %}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_sandbox_escapes_fail_safely(site, source):
    assert validate_welcome("Hello\n" + source), "saving it must be refused"
    with pytest.raises(TemplateError) as failure:
        welcome(site, "Hello\n" + source)
    assert str(failure.value).startswith("line 2: ")
    assert "Traceback" not in str(failure.value)


@pytest.mark.parametrize(
    "source",
    ["{{ site.session }}", "{{ config }}", "{{ course.session.bind.url }}", "{{ os.environ }}"],
)
def test_attribute_walks_to_the_database_or_config_find_nothing(site, source):
    assert validate_welcome(source)
    mail = welcome(site, f"[{source}]")
    assert mail.text == "[]"


HUGE = [
    ("{% for i in range(10**9) %}x{% endfor %}", "size limit: a range longer than"),
    (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "too much work",
    ),
    ("{% for i in range(9000) %}xxxxxxxxxxxxxxxxxxxx{% endfor %}", "more than 100000 characters"),
    ("{% set s %}{% for i in range(9000) %}{{ 'y' * 90000 }}{% endfor %}{% endset %}", "more"),
    ("{{ 'x' * 10**9 }}", "a value longer than"),
    ("{{ [1] * 10**9 }}", "a value longer than"),
    ("{{ 2 ** 100000 }}", "a number larger than"),
    (
        "{% set ns = namespace(n=2) %}"
        "{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
        "a number larger than",
    ),
    (
        "{% set ns = namespace(a='xxxxxxxxxx') %}{% for i in range(60) %}"
        "{% set ns.a = ns.a ~ ns.a %}{% endfor %}",
        "a value longer than",
    ),
    (
        "{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}{{ f(60) }}",
        "too much work",
    ),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "calls itself too deeply"),
    ("{{ '%1000000000d' % 1 }}", "format width"),
    ("{{ ('x' * 90000)|replace('x', 'xyz') }}", "a value longer than"),
    ("{{ (['abc' * 30000] * 50000)|join }}", "a value longer than"),
]


@pytest.mark.parametrize(("source", "message"), HUGE)
def test_huge_work_is_stopped_fast(site, source, message):
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=message):
        welcome(site, source)
    assert time.perf_counter() - started < 2


def test_runtime_errors_name_their_line(site):
    with pytest.raises(TemplateError) as failure:
        welcome(site, "one\ntwo\n{{ 1 // 0 }}\n")
    assert [str(p) for p in failure.value.problems] == [
        "line 3: integer division or modulo by zero"
    ]


# --- group names ---------------------------------------------------------------------------


def test_group_name_reads_standard_fields_directly_and_through_profile_field(site):
    user = site.user("ann", department="Sales", city="Lyon", lang="fr")
    assert group_name_for(site, user, "Groupe_{profile_field_department}") == "Groupe_Sales"
    assert group_name_for(site, user, "{department} - {city} ({lang})") == "Sales - Lyon (fr)"
    assert group_name_for(site, user, "Everyone") == "Everyone"


def test_group_name_reads_custom_fields_first(site):
    user = site.user("bob", city="Paris")
    people.set_fields(site, user, {"profile_field_team": "Blue", "profile_field_city": "Custom"})
    assert group_name_for(site, user, "Team {profile_field_team}") == "Team Blue"
    assert group_name_for(site, user, "{profile_field_city}/{city}") == "Custom/Paris"


def test_an_empty_placeholder_means_no_group(site):
    user = site.user("cyd", department="", institution="   ")
    people.set_fields(site, site.user("other"), {"profile_field_team": "Red"})
    assert group_name_for(site, user, "G {department}") is None
    assert group_name_for(site, user, "G {institution}") is None
    assert group_name_for(site, user, "G {profile_field_team}") is None  # field, but no value
    assert group_name_for(site, user, "   ") is None


def test_group_name_is_trimmed_and_cut():
    assert render_group_name({"department": "  Sales\t"}, "  G {department}  ") == "G Sales"
    long = render_group_name({"city": "x" * 300}, "{city}")
    assert long == "x" * Group.NAME_LENGTH
    cut_at_space = render_group_name({"city": "y"}, "a" * 253 + " {city}")
    assert cut_at_space == "a" * 253


def test_group_template_validation():
    custom = {"team"}
    assert validate_group_template("Groupe_{profile_field_department}", custom) == []
    assert validate_group_template("{profile_field_team} {city} {lang} {auth}", custom) == []
    assert validate_group_template("Literal {not a placeholder}", custom) == []
    found = [str(p) for p in validate_group_template("{profile_field_shoe}-{colour}", custom)]
    assert [p.split(";")[0] for p in found] == [
        "line 1: unknown placeholder {profile_field_shoe}",
        "line 1: unknown placeholder {colour}",
    ]
    assert [str(p) for p in validate_group_template("a\nb", custom)] == [
        "line 1: a group name template is one line"
    ]


GROUP_TEMPLATES = [
    "Groupe_{profile_field_department}",
    "{department}",
    "  {institution} / {city}  ",
    "{profile_field_team}-{profile_field_city}-{city}",
    "{profile_field_missingfield}",
    "Fixed name",
    "a" * 250 + " {lang}",
    "{profile_field_lang}{country}",
]


def test_sql_and_python_agree(db_site):
    site = db_site
    people.set_fields(site, site.user("u0"), {"profile_field_city": "Override"})
    site.user("u1", department="Sales", city="Lyon", institution="Uni", lang="fr", country="FR")
    site.user("u2", department="", city="  ", institution="\tUni\n")
    site.user("u3", department="Ventes été", city="Zürich", lang="de")
    site.user("u4", department="d" * 255, city="c")
    for name, values in {
        "u1": {"profile_field_team": "Blue", "profile_field_city": " Lyon 3 "},
        "u3": {"profile_field_team": "  ", "profile_field_city": "Genève"},
        "u4": {"profile_field_team": "t" * 300, "profile_field_city": "c"},
    }.items():
        user = site.session.scalar(select(User).where(User.username == name))
        people.set_fields(site, user, values)
    users = list(site.session.scalars(select(User).order_by(User.id)))
    assert len(users) == 5
    for template in GROUP_TEMPLATES:
        in_python = {u.username: group_name_for(site, u, template) for u in users}
        in_sql = dict(site.session.execute(select(User.username, group_name_sql(template))).all())
        assert in_sql == in_python, template
    # Spot checks, so that agreement is not agreement on nonsense.
    sql = dict(
        site.session.execute(
            select(User.username, group_name_sql("{profile_field_team}-{profile_field_city}"))
        ).all()
    )
    assert sql == {"u0": None, "u1": "Blue-Lyon 3", "u2": None, "u3": None, "u4": "t" * 254}
    sql = dict(site.session.execute(select(User.username, group_name_sql("{department}"))).all())
    assert sql == {"u0": None, "u1": "Sales", "u2": None, "u3": "Ventes été", "u4": "d" * 254}


# --- the CLI -------------------------------------------------------------------------------


@pytest.fixture
def preview_site(site):
    user = site.user("jean", firstname="Jean", lastname="Dupont", department="Sales")
    people.set_fields(site, user, {"profile_field_team": "Blue"})
    site.user("nodept", department="")
    site.course("MATH", fullname="Maths")
    site.session.commit()
    return site


def test_cli_previews_a_welcome_message(cli, preview_site, tmp_path):
    result = cli(
        "template", "preview", "welcome", "--course", "MATH", "--user", "jean",
        "--text", "Hi {{ firstname }} ({{ user.profile.team }}), {{ enrolment.role }} "
        "from {{ enrolment.start }} after {{ completed }}",
        "--role", "student", "--start", "2026-09-01", "--var", "completed=Intro",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output == (
        "Subject: Welcome to Maths\n\n"
        "---- text ----\n"
        "Hi Jean (Blue), Student from 2026-09-01 after Intro\n"
        "---- html ----\n"
        "<p>Hi Jean (Blue), Student from 2026-09-01 after Intro</p>\n"
    )
    page = tmp_path / "welcome.html"
    page.write_text("<h1>{{ coursename }}</h1>\n<p>{{ fullname }}</p>\n", encoding="utf-8")
    result = cli(
        "template", "preview", "welcome", "--course", "MATH", "--user", "jean",
        "--file", str(page), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "subject": "Welcome to Maths",
        "text": "Maths\n\nJean Dupont\n",
        "html": "<h1>Maths</h1>\n<p>Jean Dupont</p>\n",
    }
    default = cli("template", "preview", "welcome", "--course", "MATH", "--user", "jean")
    assert "Dear Jean Dupont," in default.output


def test_cli_reports_template_problems_by_line(cli, preview_site):
    result = cli(
        "template", "preview", "welcome", "--course", "MATH", "--user", "jean",
        "--text", "Hi {{ firstname }}\n{{ nickname }}\n{{ user.profile.shoe }}",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr == (
        "line 2: unknown variable 'nickname'\nline 3: no custom profile field 'shoe'\n"
    )
    result = cli(
        "template", "preview", "welcome", "--course", "MATH", "--user", "jean",
        "--text", "ok\n{% for %}",
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.startswith("line 2: ")
    result = cli(
        "template", "preview", "welcome", "--course", "NOPE", "--user", "jean", "--text", "x"
    )
    assert result.exit_code == 1
    assert result.stderr == "enrolkit: error: no course with shortname 'NOPE'\n"


def test_cli_previews_a_group_name(cli, preview_site):
    def group(*args):
        return cli("template", "preview", "group", *args)

    ok = group("--user", "jean", "--text", "Groupe_{profile_field_department}")
    assert (ok.exit_code, ok.output) == (0, "Groupe_Sales\n")
    custom = group("--user", "jean", "--text", "Team {profile_field_team}")
    assert (custom.exit_code, custom.output) == (0, "Team Blue\n")
    empty = group("--user", "nodept", "--text", "Groupe_{department}")
    assert (empty.exit_code, empty.output) == (0, "(no group: {department} empty for nodept)\n")
    bad = group("--user", "jean", "--text", "G_{profile_field_shoe}")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("line 1: unknown placeholder {profile_field_shoe}; use ")
    missing = group("--user", "jean")
    assert missing.exit_code == 2
    assert "give the template with --text or --file" in missing.output
