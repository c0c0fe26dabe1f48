"""Every page in French: each GET route of ``app.url_map``, walked with the real ids of the demo
site (every method's instance form, every method's settings) as anonymous, student, teacher and
admin, all speaking French, shows no English outside proper names. On each database backend, one
demo site per backend for the whole walk.

The check is a simple, honest heuristic, two ways:
- no message id of the catalogs (core and plugins) appears untranslated on a page;
- no English-only word (a short stop-word list) is left once the site's own data is taken out
  (names of people, courses, cohorts, groups...; stored log reasons and mail, which are data).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from enrolkit import demo
from enrolkit.catalogs import CORE_FOLDER
from enrolkit.models import (
    Badge,
    Category,
    Cohort,
    Course,
    EnrolInstance,
    Group,
    HeldPlan,
    LogEntry,
    MailMessage,
    ProfileField,
    Role,
    User,
    UserEnrolment,
)
from enrolkit.testing import backends, fresh_database_url
from enrolkit.web import create_app
from sqlalchemy import select

ROLES = (None, "jean", "prof.martin", "admin")
PASSWORD = demo.ADMIN_PASSWORD

#: Words that are English and not French: one on a French page is a text left untranslated.
ENGLISH = set(
    """the and of to is are you your with for this that from by has have was were will be which
    who when where there their them they these those been being would should could than then
    into onto about after before while enrol enrolled enrolment enrolments unenrol unenrolled
    settings add edit delete save remove removed users user course courses role roles yes
    every each any all search filter show log logs held sent failed queued teacher student
    manager welcome login logout password enabled disabled method methods
    cohort cohorts group groups field fields rule rules status suspended approve discard
    run runs task tasks home back next previous name names value values start end ends
    since until never always nobody people members member here what how why not no but only
    also more less must may can cannot does did done""".split()
)
#: Words that are the same in both languages or are names of things, never translated.
SAME = set(
    """enrolkit moodle csv json iso smtp url http https jinja jinja2 cron utc english français
    id ok api scim""".split()
)
#: A message id of at least this many words is checked verbatim.
MIN_WORDS = 2


class _Text(HTMLParser):
    """The text a person reads: text nodes (not scripts or styles) and the attributes read out
    (placeholder, title, aria-label, alt, a button's value)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "pre", "code", "textarea"):
            self._skip += 1
        for name, value in attrs:
            if value and (
                name in ("placeholder", "title", "aria-label", "alt")
                or (tag == "input" and name == "value" and ("type", "submit") in attrs)
            ):
                self.parts.append(value)

    def handle_endtag(self, tag):
        if tag in ("script", "style", "pre", "code", "textarea") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return re.sub(r"\s+", " ", " ".join(parser.parts))


def _catalogs() -> list[Path]:
    import enrolkit.plugins

    folders = [Path(CORE_FOLDER)]
    folders += [Path(f) for f in enrolkit.plugins.Plugins().translation_folders()]
    return [folder / "fr" / "LC_MESSAGES" / "messages.po" for folder in folders]


def _msgids() -> list[str]:
    found = []
    for path in _catalogs():
        with open(path, "rb") as handle:
            for message in read_po(handle, locale="fr"):
                text = message.id if isinstance(message.id, str) else None
                if not text or "%(" in text or text == message.string:
                    continue
                if len(text.split()) >= MIN_WORDS:
                    found.append(text)
    return found


@pytest.fixture(scope="module", params=backends())
def walk_site(request, tmp_path_factory):
    """The demo site on each database backend, made once for the whole walk, everyone
    French-speaking with a password; every task run once, so the tasks page lists results."""
    from enrolkit import people
    from enrolkit.models import Base
    from enrolkit.plugins import Plugins
    from enrolkit.runtime import Runtime
    from enrolkit.tasks import Runner

    home = tmp_path_factory.mktemp("home")
    patch = pytest.MonkeyPatch()
    patch.setenv("ENROLKIT_HOME", str(home))
    patch.delenv("ENROLKIT_SMTP_URL", raising=False)
    plugins = Plugins(entry_points=True)
    plugins.load_all()  # imports the plugins' models, so their tables are made too
    runtime = Runtime(fresh_database_url(request.param, home), plugins)
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site:
        demo.load(site)
        with site.atomic():
            hashed = people.hash_password(PASSWORD)
            for user in site.session.scalars(select(User)):
                user.password_hash, user.lang = hashed, "fr"
            instance = site.session.scalar(
                select(EnrolInstance).where(EnrolInstance.method == "cohort")
            )
            site.session.add(
                HeldPlan(instance_id=instance.id, status="held", summary={}, payload={"rows": []})
            )
    failed = [run.line() for run in Runner(runtime).cron(force=True) if run.status != "ok"]
    assert not failed, failed
    app = create_app({"TESTING": True}, runtime)
    yield app, runtime
    runtime.dispose()
    patch.undo()


#: Stored text a page shows as it was written, on the pages that list it: a log entry's reason
#: (English, as Moodle's event descriptions), a mail as it was sent.
STORED = {
    "/admin/logs": (LogEntry.reason,),
    "/admin/mail": (MailMessage.subject, MailMessage.body),
}


def _data(runtime, url: str = "") -> list[str]:
    """The site's own words: names people gave things; on the pages that list them, the stored
    text of :data:`STORED` and a flat file's error report."""
    columns = [
        User.username, User.firstname, User.lastname, User.email, User.department,
        User.city, User.institution, Course.shortname, Course.fullname, Category.name,
        Cohort.name, Cohort.idnumber, Group.name, Role.shortname, Badge.name,
        ProfileField.shortname, ProfileField.name, MailMessage.to, EnrolInstance.name,
    ]  # fmt: skip
    for prefix, stored in STORED.items():
        if url.startswith(prefix):
            columns += stored
    found = set()
    with runtime.site() as site:
        for column in columns:
            found.update(value for value in site.session.scalars(select(column)) if value)
        found.update(site.plugins.methods)
        found.update(site.plugins.tasks)
        try:  # a flat file's error report (a CSV file the page lists), as Moodle's
            from enrol_flatfile import report
            from enrol_flatfile.method import load_settings

            reports = load_settings(site).folder.glob("*.errors.csv") if "/flatfile" in url else ()
            for errors in reports:
                found.update(row["reason"] for row in report.read_errors(errors))
        except ImportError:
            pass
    return sorted(found, key=len, reverse=True)


def _urls(app, runtime):
    """Each GET route with every id the demo has for its variables (all instances, all
    methods' settings), static files left out."""
    with runtime.site() as site:
        instances = [(i.course_id, i.id) for i in site.session.scalars(select(EnrolInstance))]
        first = lambda model: site.session.scalar(select(model.id).order_by(model.id))  # noqa: E731
        values = {
            "course_id": [
                site.session.scalar(select(Course.id).where(Course.shortname == "MATH101"))
            ],
            "user_id": [site.session.scalar(select(User.id).where(User.username == "jean"))],
            "cohort_id": [first(Cohort)],
            "category_id": [first(Category)],
            "plan_id": [first(HeldPlan)],
            "message_id": [first(MailMessage)],
            "group_id": [first(Group)],
            "enrolment_id": [
                site.session.scalar(
                    select(UserEnrolment.id)
                    .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
                    .join(Course, Course.id == EnrolInstance.course_id)
                    .where(Course.shortname == "MATH101", EnrolInstance.method == "manual")
                    .order_by(UserEnrolment.id)
                )
                or 1
            ],
            "file_id": [1],
            "name": sorted(site.plugins.methods),
        }
        tasks = sorted(site.plugins.tasks)
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.rule.startswith(("/api/", "/scim", "/static")):
            continue
        args = set(rule.arguments)
        if "instance_id" in args:
            combos = [{"course_id": c, "instance_id": i} for c, i in instances]
        else:
            combos = [{}]
        for name in args - {"instance_id", "course_id"} if "instance_id" in args else args:
            options = tasks if name == "name" and "task" in rule.endpoint else values.get(name, [1])
            choices = getattr(rule._converters[name], "items", None)  # <any(a, b):name>
            if choices:
                options = sorted(choices)
            combos = [{**combo, name: option} for combo in combos for option in options]
        with app.test_request_context():
            from flask import url_for

            for combo in combos:
                yield rule.endpoint, url_for(rule.endpoint, **combo)


#: A code, not a word: a token with these inside (``operation,username``, ``{profile_field_x}``,
#: ``enrol_cohort``, ``$ENROLKIT_HOME``, ``user.firstname``, ``shortname=alias``).
CODE = re.compile(r"\w[,\[\]{}_=$/.(]\w|[_{}$\[\]]")


def _words(text: str) -> str:
    """``text`` without its code tokens."""
    return " ".join(token for token in text.split() if not CODE.search(token))


def english_left(text: str, data: list[str], msgids: list[str]) -> list[str]:
    """What reads as English in ``text``: catalog ids left untranslated, English-only words."""
    words = _words(text)
    for value in data:
        value = _words(value)
        if value:
            words = re.sub(rf"(?<!\w){re.escape(value)}(?!\w)", " ", words)
    found = [f"untranslated: {m!r}" for m in msgids if m in words]
    for match in re.finditer(r"[A-Za-zÀ-ÿ]+", words):
        word = match.group()
        if word.lower() in ENGLISH and word.lower() not in SAME:
            where = words[max(0, match.start() - 40) : match.end() + 40]
            found.append(f"{word!r} in …{where}…")
    return found


def test_every_page_in_french_has_no_english(walk_site):
    app, runtime = walk_site
    data, msgids = {}, _msgids()
    clients = {}
    for username in ROLES:
        client = app.test_client()
        client.set_cookie("enrolkit_lang", "fr")
        if username:
            token = re.search(
                r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)
            )
            client.post(
                "/login",
                data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
            )
        clients[username] = client
    problems: dict[str, list[str]] = {}
    pages = 0
    for _endpoint, url in _urls(app, runtime):
        for client in clients.values():
            response = client.get(url)
            if response.status_code not in (200, 403) or "html" not in response.content_type:
                continue
            pages += 1
            if url not in data:
                data[url] = _data(runtime, url)
            left = english_left(visible_text(response.get_data(as_text=True)), data[url], msgids)
            if left:
                problems.setdefault(url, sorted(set(left)))
    assert pages > 60
    report = "\n".join(f"{url}: {'; '.join(found[:6])}" for url, found in sorted(problems.items()))
    assert not problems, f"English on {len(problems)} French pages:\n{report}"
