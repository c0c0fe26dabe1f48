"""Every page in a real browser, in English and French, at 1280 and 375 px: it opens, does not
scroll sideways at 375 px, has no serious or critical axe-core violation, labels every input
and offers a main action that takes the keyboard focus, and is screenshotted
into ``artifacts/screenshots/`` (git-ignored; ``$ENROLKIT_SCREENSHOTS`` elsewhere). Then the
main actions of the new pages, done as a person would, pickers included."""

from __future__ import annotations

import json

import pytest
from browser_site import axe_violations, main_action_problem, overflow, shot, unlabelled_inputs
from enrolkit import clock, lookup
from enrolkit.access import complete_course
from enrolkit.enrolments import add_instance
from enrolkit.models import (
    Category,
    Cohort,
    EnrolInstance,
    MailMessage,
    ProfileField,
    ScheduledTask,
    User,
    UserEnrolment,
    WebhookDelivery,
    WebhookSubscription,
)
from sqlalchemy import select

pytest.importorskip("enrol_completion")
pytest.importorskip("enrol_autoenrol")
pytest.importorskip("enrol_self")


@pytest.fixture(scope="module")
def ids(server):
    """A site with something on every page: methods on, a delayed completion enrolment
    pending, an auto-enrol rule, a self-enrolment with a limit, a mail message, a failed task,
    a webhook with a delivery, a custom profile field with a description; the ids the URLs
    need."""
    _base, runtime = server
    with runtime.site() as site:
        with site.atomic():
            for name in ("cohort", "meta", "completion", "autoenrol", "self"):
                site.set_method_enabled(name, True)
        math, math2 = (lookup.course(site.session, n) for n in ("MATH101", "MATH201"))
        onboard = lookup.course(site.session, "ONBOARD")
        add_instance(site, math2, "completion", {"source": "MATH101", "delay": "2d"})
        add_instance(site, math2, "self", {"maxenrolled": "30", "enrolenddate": "2027-06-30"})
        with site.atomic():
            hook = WebhookSubscription(
                url="https://lms.example.org/enrolkit-hook", events="user_enrolled", secret=""
            )
            site.session.add(hook)
            site.session.flush()
            site.session.add(WebhookDelivery(subscription_id=hook.id, msg_id="msg_tour", body="{}"))
            campus = ProfileField(
                shortname="campus", name="Campus", description="Where the student studies most"
            )
            site.session.add(campus)
        rule = {"op": "&", "c": [{"type": "profile", "sf": "department", "op": "isequalto",
                                  "v": "IT"}]}  # fmt: skip
        autoenrol = add_instance(
            site, onboard, "autoenrol", {"mode": "login", "rule": json.dumps(rule)}
        ).instance
        jean = lookup.user(site.session, "jean")
        with site.atomic():
            complete_course(site, jean, math, clock.now())
            mail = MailMessage(to="jean@demo.enrolkit.test", subject="Bienvenue", body="Bonjour")
            site.session.add(mail)
            task = site.session.scalars(select(ScheduledTask)).first()
            if task is not None:
                task.last_result = "failed: the example failure"
                task.last_run = clock.now()
        manual = site.session.scalar(
            select(UserEnrolment.id)
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .where(EnrolInstance.course_id == math.id, EnrolInstance.method == "manual")
            .limit(1)
        )
        instance = site.session.scalar(
            select(EnrolInstance.id).where(EnrolInstance.course_id == math.id).limit(1)
        )
        return {
            "math": math.id,
            "math2": math2.id,
            "onboard": onboard.id,
            "autoenrol": autoenrol.id,
            "instance": instance,
            "enrolment": manual,
            "jean": jean.id,
            "cohort": site.session.scalar(select(Cohort.id).limit(1)),
            "category": site.session.scalar(select(Category.id).order_by(Category.id).limit(1)),
            "mail": mail.id,
            "webhook": hook.id,
            "campus": campus.id,
            "department": site.session.scalar(
                select(ProfileField.id).where(ProfileField.shortname == "department")
            ),
        }


def tour(ids: dict) -> dict[str, tuple[str | None, str]]:
    """Page name -> (who looks, URL): every page a person opens, the new ones included."""
    math = f"/course/{ids['math']}/manage"
    return {
        "login": (None, "/login"),
        "dashboard": ("jean", "/"),
        "catalogue": ("jean", "/courses"),
        "course-view": ("jean", f"/course/{ids['onboard']}"),
        "course-denied": ("jean", f"/course/{ids['math']}"),
        "profile": ("jean", f"/user/{ids['jean']}"),
        "admin-home": ("admin", "/admin/"),
        "admin-methods": ("admin", "/admin/methods"),
        "admin-method-settings": ("admin", "/admin/methods/autoenrol/settings"),
        "admin-users": ("admin", "/admin/users"),
        "admin-user-new": ("admin", "/admin/users/new"),
        "admin-user": ("admin", f"/admin/users/{ids['jean']}"),
        "admin-user-delete": ("admin", f"/admin/users/{ids['jean']}/delete"),
        "admin-users-upload": ("admin", "/admin/users/upload"),
        "admin-profile-fields": ("admin", "/admin/profile-fields"),
        "admin-profile-field": ("admin", f"/admin/profile-fields/{ids['campus']}"),
        "admin-profile-field-delete": ("admin", f"/admin/profile-fields/{ids['campus']}/delete"),
        # The demo's auto-enrol groups read it: the page says where to act instead.
        "admin-profile-field-in-use": (
            "admin",
            f"/admin/profile-fields/{ids['department']}/delete",
        ),
        "admin-site-settings": ("admin", "/admin/site"),
        "admin-webhooks": ("admin", "/admin/webhooks"),
        "admin-webhook-add": ("admin", "/admin/webhooks/add"),
        "admin-webhook-remove": ("admin", f"/admin/webhooks/{ids['webhook']}/remove"),
        "admin-webhook-deliveries": ("admin", "/admin/webhooks/deliveries"),
        "admin-courses": ("admin", "/admin/courses"),
        "admin-course-new": ("admin", "/admin/courses/new"),
        "admin-course-edit": ("admin", f"/admin/courses/{ids['math']}/edit"),
        "admin-course-delete": ("admin", f"/admin/courses/{ids['math']}/delete"),
        "admin-categories": ("admin", "/admin/categories"),
        "admin-category": ("admin", f"/admin/categories/{ids['category']}"),
        "admin-category-delete": ("admin", f"/admin/categories/{ids['category']}/delete"),
        "admin-cohorts": ("admin", "/admin/cohorts"),
        "admin-cohort": ("admin", f"/admin/cohorts/{ids['cohort']}"),
        "admin-tasks": ("admin", "/admin/tasks"),
        "admin-logs": ("admin", "/admin/logs"),
        "admin-mail": ("admin", "/admin/mail"),
        "admin-mail-message": ("admin", f"/admin/mail/{ids['mail']}"),
        "admin-plans": ("admin", "/admin/plans"),
        "admin-pending": ("admin", "/admin/pending"),
        "admin-flatfile": ("admin", "/admin/flatfile"),
        "course-methods": ("admin", math),
        "course-add-cohort": ("admin", f"{math}/add?method=cohort"),
        "course-add-completion": ("admin", f"{math}/add?method=completion"),
        "course-add-autoenrol": ("admin", f"{math}/add?method=autoenrol"),
        "course-instance": ("admin", f"{math}/instance/{ids['instance']}"),
        "course-participants": ("admin", f"{math}/participants"),
        "course-enrolment": ("admin", f"{math}/enrolment/{ids['enrolment']}"),
        "course-pending": ("admin", f"/course/{ids['math']}/manage/pending"),
        "course-welcome": ("admin", f"{math}/welcome"),
        "course-groups": ("admin", f"{math}/groups"),
        "course-rules": ("admin", f"/course/{ids['onboard']}/manage/rules"),
        "course-rule": ("admin", f"/course/{ids['onboard']}/manage/rules/{ids['autoenrol']}"),
        "course-completion": ("admin", f"{math}/completion"),
        "self-overview": ("prof.martin", f"/plugins/enrol_self/course/{ids['math2']}"),
    }


#: Pages that only tell (a student's view of a course): no action to reach.
READ_ONLY = ("course-view", "course-denied")


def _set_language(runtime, lang: str) -> None:
    with runtime.site() as site, site.atomic():
        people = ("admin", "jean", "prof.martin")
        for user in site.session.scalars(select(User).where(User.username.in_(people))):
            user.lang = lang


def test_every_page_in_both_languages_at_both_widths(server, ids, visit):
    _base, runtime = server
    pages = tour(ids)
    problems: list[str] = []
    for lang in ("en", "fr"):
        _set_language(runtime, lang)
        for width in (1280, 375):
            people = {who: visit(who, width=width) for who in {w for w, _url in pages.values()}}
            for name, (who, url) in pages.items():
                page = people[who]
                errors: list[str] = []
                page.on("pageerror", lambda error, errors=errors: errors.append(str(error)))
                response = page.goto(url)
                expected = 403 if name == "course-denied" else 200  # the "why not" page
                if response is None or response.status != expected:
                    problems.append(f"{name} {lang} {width}: HTTP {response and response.status}")
                    continue
                if width == 375 and overflow(page) > 0:
                    width_now = page.evaluate("document.documentElement.scrollWidth")
                    problems.append(f"{name} {lang}: scrolls sideways to {width_now}px at 375")
                if width == 1280:
                    problems += [f"{name} {lang}: axe {v}" for v in axe_violations(page)]
                    problems += [f"{name}: unlabelled {i}" for i in unlabelled_inputs(page)]
                    if name not in READ_ONLY and (issue := main_action_problem(page)):
                        problems.append(f"{name} {lang}: {issue}")
                problems += [f"{name} {lang} {width}: script error {e}" for e in errors]
                shot(page, f"{name}-{lang}-{width}")
    _set_language(runtime, "en")  # as the demo has them, for the tests after this one
    assert not problems, "\n".join(problems)


def test_the_rule_builder_and_tester_on_the_auto_enrol_add_form(server, ids, visit):
    page = visit("admin")
    page.goto(f"/course/{ids['math']}/manage/add?method=autoenrol")
    builder = page.locator("#rule-builder")
    builder.get_by_label("Condition type").select_option("profile")
    builder.get_by_role("button", name="Add condition").click()
    condition = builder.locator(".condition").first
    condition.get_by_label("Value").fill("IT")
    rule = json.loads(page.input_value("textarea[name=rule]"))
    assert rule["c"][0]["type"] == "profile" and rule["c"][0]["v"] == "IT"
    page.locator("#rule-user").fill("jean")
    page.get_by_role("button", name="Test this rule").click()
    page.locator("#rule-result h2", has_text="jean matches").wait_for()
    page.locator("#rule-user").fill("marie")
    page.get_by_role("button", name="Test this rule").click()
    page.locator("#rule-result h2", has_text="marie does not match").wait_for()
    shot(page, "course-add-autoenrol-builder-en-1280")
    page.get_by_role("button", name="Add method").click()
    page.locator(".flash-success").wait_for()


def test_enrol_users_with_the_pickers(server, ids, visit):
    page = visit("admin")
    page.goto(f"/course/{ids['onboard']}/manage/participants")
    find = page.get_by_label("Find a user")
    find.fill("Cur")  # Marie Curie
    options = f"#{find.get_attribute('list')} option"
    page.wait_for_function(
        "selector => [...document.querySelectorAll(selector)].map(o => o.value).join() === 'marie'",
        arg=options,
    )
    assert "Marie Curie" in page.locator(options).first.get_attribute("label")
    find.fill("marie")
    find.dispatch_event("change")  # what choosing the suggestion does
    assert page.input_value("#e-usernames") == "marie"
    page.locator("#e-usernames").fill("marie\npaul")
    page.get_by_role("button", name="Enrol users").click()
    page.get_by_text("2 users enrolled.").wait_for()
    assert "Paul Durand" in page.inner_text("table.participants")
    shot(page, "course-enrol-users-done-en-1280")


def test_admin_adds_a_user_from_the_users_page(server, ids, visit):
    page = visit("admin")
    page.goto("/admin/users")
    page.get_by_role("link", name="Add a user").click()
    page.get_by_label("Username").fill("chloe")
    page.get_by_label("First name").fill("Chloé")
    page.get_by_label("Last name").fill("Bernard")
    page.get_by_label("Email").fill("chloe@example.org")
    page.get_by_role("button", name="Create user").click()
    page.get_by_text("User chloe created.").wait_for()
    assert page.get_by_role("heading", name="Chloé Bernard").is_visible()
