"""Course pages for its teachers and site admins: enrolment methods, participants, the welcome
message and group-name templates, the auto-enrol rule builder, completions and the learning path.

Every page here is behind :func:`course_manager`; an instance named in the URL must belong to
the course in the URL, so a teacher cannot reach another course's instance by changing a number.
"""

from __future__ import annotations

import json
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import access, enrolments, jsontext, lookup, roles, templating, throttle
from ..errors import EnrolkitError, SettingsError
from ..groups import list_groups
from ..methods import EnrolMethod
from ..models import Course, EnrolInstance, Group, Role, User, UserEnrolment
from ..rules import RuleError, parse
from ..templating import TemplateError
from . import forms, participants, paths, rulebuilder
from .guards import course_manager, site
from .i18n import message_of, read_time, say
from .views import filter_args, page_number, page_size

bp = Blueprint("course", __name__, url_prefix="/course/<int:course_id>/manage")

WELCOME, GROUP, RULE = "welcome_template", "group_template", "rule"
#: The preview frame reads like the page around it (the site's font), not the browser's serif.
FRAME_STYLE = (
    "<style>body{font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1d2330;margin:.8rem}</style>"
)


@bp.url_defaults
def _course_id(endpoint, values):
    if "course_id" not in values and "course" in g:
        values["course_id"] = g.course.id


# --- helpers ---------------------------------------------------------------------------------


def _instance(course: Course, instance_id: int) -> EnrolInstance:
    instance = site().session.get(EnrolInstance, instance_id)
    if instance is None or instance.course_id != course.id:
        abort(404)
    return instance


def _instances(course: Course) -> list[EnrolInstance]:
    return list(
        site().session.scalars(
            select(EnrolInstance)
            .where(EnrolInstance.course_id == course.id)
            .order_by(EnrolInstance.sortorder, EnrolInstance.id)
        )
    )


def _with_setting(course: Course, setting: str) -> list[EnrolInstance]:
    methods = site().plugins.methods
    return [i for i in _instances(course) if forms.has_field(methods.get(i.method), setting)]


def addable_methods(course: Course) -> list[EnrolMethod]:
    """Methods a teacher may add here: enabled on the site, added by hand, and not already
    present when the method allows one instance per course."""
    s = site()
    present = {i.method for i in _instances(course)}
    return [
        s.plugins.methods[name]
        for name in s.enabled_methods()
        if s.plugins.methods[name].manual_instances
        and (s.plugins.methods[name].multiple_instances or name not in present)
    ]


def _roles() -> list[Role]:
    return list(site().session.scalars(select(Role).order_by(Role.sortorder)))


def _givable(course: Course, current: Role | None = None) -> list[Role]:
    """The roles this user may give here (Moodle's allow-assign), and the one already set."""
    found = roles.assignable(site(), g.user, course)
    if current is not None and current not in found:
        found = sorted([*found, current], key=lambda role: role.sortorder)
    return found


def _refused_role(course: Course, name: str, current: Role | None = None) -> str | None:
    """Why this user may not give the role ``name`` here, or None when they may (or when it is
    the role already set). An unknown role is left to the service to name."""
    if not name or (current is not None and current.shortname == name):
        return None
    allowed = roles.assignable(site(), g.user, course)
    if name.strip().lower() in {role.shortname for role in allowed}:
        return None
    if name.strip().lower() not in {role.shortname for role in _roles()}:
        return None
    return _(
        "You may not give the role %(role)s in this course. Roles you may give: %(allowed)s.",
        role=name,
        allowed=", ".join(role.shortname for role in allowed) or _("none"),
    )


def _check_role_change(course: Course, raw: dict, current: Role | None = None) -> None:
    """Refuse, as a form error on ``role``, a new role this user may not give."""
    refused = _refused_role(course, raw.get("role", ""), current)
    if refused:
        raise SettingsError({"role": [refused]}, where="instance")


def _core_posted() -> dict[str, str]:
    return {
        "name": request.form.get("name", "").strip(),
        "role": request.form.get("role", "").strip(),
        "enabled": "on" if request.form.get("enabled") else "off",
    }


def _outcome_message(outcome) -> str:
    if outcome is None or not outcome.changed:
        return ""
    if outcome.held_plan_id:
        return _("Plan %(id)d is held for an admin.", id=outcome.held_plan_id)
    counts = outcome.counts()
    return _(
        "%(enrolled)d enrolled, %(updated)d updated, %(suspended)d suspended, "
        "%(unenrolled)d unenrolled.",
        enrolled=counts["enrolled"],
        updated=counts["updated"],
        suspended=counts["suspended"],
        unenrolled=counts["unenrolled"],
    )


def _user_or_none(username: str) -> User | None:
    if not username:
        return None
    try:
        return lookup.user(site().session, username)
    except EnrolkitError as exc:
        say(message_of(exc), "error")
        return None


# --- methods ---------------------------------------------------------------------------------


@bp.get("")
@course_manager
def methods(course: Course):
    s = site()
    counts = dict(
        s.session.execute(
            select(UserEnrolment.instance_id, func.count())
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .where(EnrolInstance.course_id == course.id)
            .group_by(UserEnrolment.instance_id)
        ).all()
    )
    return render_template(
        "course/methods.html",
        course=course,
        instances=[(i, s.plugins.methods.get(i.method)) for i in _instances(course)],
        counts=counts,
        addable=addable_methods(course),
        roles={r.id: r for r in _roles()},
        enabled_methods=set(s.enabled_methods()),
    )


def _instance_form(course, method, instance, values, errors, status=200):
    has_rule = forms.has_field(method, RULE)
    return render_template(
        "course/instance.html",
        builder=rulebuilder.builder_data(site()) if has_rule else None,
        course=course,
        method=method,
        instance=instance,
        values=values,
        errors=errors,
        roles=_givable(
            course,
            site().session.get(Role, instance.role_id) if instance and instance.role_id else None,
        ),
        settings=forms.render(site(), method, "instance", values, errors),
    ), status


@bp.route("/add", methods=["GET", "POST"])
@course_manager
def add_instance(course: Course):
    s = site()
    name = request.values.get("method", "")
    method = next((m for m in addable_methods(course) if m.name == name), None)
    if method is None:
        flash(_("This method cannot be added to this course."), "error")
        return redirect(url_for("course.methods"))
    if request.method == "GET":
        default_role = method.default_role(s) or ""
        return _instance_form(
            course, method, None, {"name": "", "role": default_role, "enabled": True}, {}
        )
    raw = {**_core_posted(), **forms.posted(method.instance_schema, exclude=("name", "role"))}
    if not raw["role"]:
        del raw["role"]
    try:
        _check_role_change(course, raw)
        result = enrolments.add_instance(s, course, method.name, raw)
    except SettingsError as exc:
        return _instance_form(course, method, None, raw, exc.messages, 400)
    except EnrolkitError as exc:
        say(message_of(exc), "error")
        return _instance_form(course, method, None, raw, {}, 400)
    flash(
        " ".join(
            filter(
                None,
                [
                    _("%(method)s added.", method=method.display_name(result.instance)),
                    _outcome_message(result.outcome),
                ],
            )
        ),
        "success",
    )
    return redirect(url_for("course.methods"))


@bp.route("/instance/<int:instance_id>", methods=["GET", "POST"])
@course_manager
def edit_instance(course: Course, instance_id: int):
    s = site()
    instance = _instance(course, instance_id)
    method = s.plugins.method(instance.method)
    role = s.session.get(Role, instance.role_id) if instance.role_id else None
    if request.method == "GET":
        values: dict[str, Any] = {
            **(instance.settings or {}),
            "name": instance.name,
            "role": role.shortname if role else "",
            "enabled": instance.enabled,
        }
        return _instance_form(course, method, instance, values, {})
    raw = {**_core_posted(), **forms.posted(method.instance_schema, exclude=("name", "role"))}
    if not raw["role"]:
        del raw["role"]
    try:
        _check_role_change(course, raw, role)
        result = enrolments.update_instance(s, instance, raw)
    except SettingsError as exc:
        s.session.rollback()
        return _instance_form(course, method, instance, raw, exc.messages, 400)
    except EnrolkitError as exc:
        s.session.rollback()
        say(message_of(exc), "error")
        return _instance_form(course, method, instance, raw, {}, 400)
    flash(" ".join(filter(None, [_("Saved."), _outcome_message(result.outcome)])), "success")
    return redirect(url_for("course.methods"))


@bp.post("/instance/<int:instance_id>/toggle")
@course_manager
def toggle_instance(course: Course, instance_id: int):
    instance = _instance(course, instance_id)
    try:
        result = enrolments.update_instance(
            site(), instance, {"enabled": "off" if instance.enabled else "on"}
        )
    except EnrolkitError as exc:
        say(message_of(exc), "error")
    else:
        state = _("enabled") if result.instance.enabled else _("disabled")
        flash(
            " ".join(
                filter(
                    None,
                    [
                        _(
                            "%(name)s is %(state)s.",
                            name=instance.name or instance.method,
                            state=state,
                        ),
                        _outcome_message(result.outcome),
                    ],
                )
            ),
            "success",
        )
    return redirect(url_for("course.methods"))


@bp.route("/instance/<int:instance_id>/delete", methods=["GET", "POST"])
@course_manager
def delete_instance(course: Course, instance_id: int):
    s = site()
    instance = _instance(course, instance_id)
    method = s.plugins.methods.get(instance.method)
    if request.method == "POST":
        label = method.display_name(instance) if method else instance.method
        try:
            outcome = enrolments.delete_instance(s, instance)
        except EnrolkitError as exc:
            say(message_of(exc), "error")
        else:
            flash(
                _(
                    "%(name)s deleted; %(count)d enrolments removed.",
                    name=label,
                    count=len(outcome.unenrolled),
                ),
                "success",
            )
        return redirect(url_for("course.methods"))
    count = s.session.scalar(select(func.count()).where(UserEnrolment.instance_id == instance.id))
    return render_template(
        "course/delete.html", course=course, instance=instance, method=method, count=count
    )


# --- participants ----------------------------------------------------------------------------


@bp.get("/participants")
@course_manager
def participants_page(course: Course):
    s = site()
    filters = participants.Filters(
        method=request.args.get("method", ""),
        role=request.args.get("role", ""),
        status=request.args.get("status", ""),
        query=request.args.get("q", "").strip(),
    )
    found = participants.page(s, course, filters, page_number(), page_size())
    return render_template(
        "course/participants.html",
        course=course,
        filters=filters,
        found=found,
        methods=participants.methods_in(s, course),
        roles=_roles(),
        givable=_givable(course),
        statuses=participants.STATUSES,
        plugins=s.plugins.methods,
    )


@bp.post("/participants/enrol")
@course_manager
def enrol_user(course: Course):
    s = site()
    try:
        user = lookup.user(s.session, request.form.get("username", "").strip())
        role_name = request.form.get("role", "").strip()
        refused = _refused_role(course, role_name)
        if refused:
            flash(refused, "error")
            return redirect(url_for("course.participants_page"))
        role = lookup.role(s.session, role_name) if role_name else None
        timeend = read_time(request.form.get("timeend"), "end")
        outcome = enrolments.enrol_manually(s, user, course, role=role, timeend=timeend or None)
    except EnrolkitError as exc:
        say(message_of(exc), "error")
    else:
        flash(
            _("%(user)s is enrolled.", user=user.username)
            if outcome.changed
            else _("%(user)s was already enrolled.", user=user.username),
            "success",
        )
    return redirect(url_for("course.participants_page"))


@bp.post("/participants/unenrol")
@course_manager
def unenrol_user(course: Course):
    s = site()
    try:
        user = lookup.user(s.session, request.form.get("username", ""))
        instance_id = int(request.form.get("instance", "0")) or None
        if instance_id is not None:
            _instance(course, instance_id)
        enrolments.unenrol_manually(s, user, course, instance_id)
    except (EnrolkitError, ValueError) as exc:
        say(message_of(exc), "error")
    else:
        flash(_("%(user)s is unenrolled.", user=user.username), "success")
    return redirect(url_for("course.participants_page", **filter_args()))


# --- welcome message -------------------------------------------------------------------------


def _extra_vars(text: str) -> dict[str, str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return enrolments.parse_settings(lines)


class _Refused(EnrolkitError):
    """A preview asked for a user the viewer may not see."""


def _preview_subject(course: Course, username: str) -> tuple[User | None, frozenset[str] | None]:
    """Whom a preview shows, and which of their fields (None: all).

    The sample user (blank or its username) for anyone. An admin may preview any user; a
    teacher only themself or a participant of this course, and of a participant only what the
    participants page shows. Raises :class:`EnrolkitError` for a user not found or refused."""
    if not username or username == templating.SAMPLE_USERNAME:
        return None, None
    s = site()
    user = lookup.user(s.session, username)
    if g.user.siteadmin or user.id == g.user.id:
        return user, None
    if not participants.is_participant(s, course, user):
        raise _Refused(
            _(
                "You can preview only with a participant of this course, yourself or the "
                "sample user %(sample)s.",
                sample=templating.SAMPLE_USERNAME,
            )
        )
    return user, participants.SHOWN_FIELDS


def _preview_allowance() -> int:
    """Count one template preview for the current user; 0 when allowed, else the seconds to
    wait. Each renders user-written code, so a burst could keep the server busy."""
    config = current_app.config
    return throttle.take(
        site(),
        f"preview:{g.user.id}",
        limit=config["PREVIEW_LIMIT"],
        window=config["PREVIEW_WINDOW"],
    )


def _welcome_preview(course: Course, source: str, username: str, extra_text: str) -> dict:
    """Subject, text and HTML of the message for ``username``, or its problems (with
    ``status``: 429 and ``retry_after`` when over the preview limit, 403 for a refused user)."""
    wait = _preview_allowance()
    if wait:
        message = _("Too many previews: wait %(seconds)d seconds, then try again.", seconds=wait)
        return {"problems": [message], "status": 429, "retry_after": wait}
    try:
        user, shown = _preview_subject(course, username)
        mail = templating.preview_welcome(
            site(), source, user=user, course=course, extra=_extra_vars(extra_text), shown=shown
        )
    except TemplateError as exc:
        return {"problems": [str(p) for p in exc.problems], "status": 400}
    except _Refused as exc:
        return {"problems": [str(exc)], "status": 403}
    except EnrolkitError as exc:
        return {"problems": [str(exc)], "status": 400}
    return {"subject": mail.subject, "text": mail.text, "html": mail.html, "problems": []}


def _answered(preview: dict, status: int):
    """Add Retry-After to a preview answer over the limit."""
    headers = {"Retry-After": str(preview["retry_after"])} if "retry_after" in preview else {}
    return status, headers


@bp.route("/welcome", methods=["GET", "POST"])
@course_manager
def welcome(course: Course):
    s = site()
    candidates = _with_setting(course, WELCOME)
    chosen = request.values.get("instance", type=int)
    instance = next((i for i in candidates if i.id == chosen), None)
    if chosen and instance is None:
        abort(404)
    username = request.values.get("user", "").strip() or g.user.username
    source = request.form.get("source")
    if source is None:
        source = (instance.settings or {}).get(WELCOME, "") if instance else ""
    extra_text = request.form.get("variables", "")
    preview = _welcome_preview(course, source, username, extra_text)
    if request.method == "POST" and request.form.get("action") == "save":
        if instance is None:
            flash(_("Choose the method whose message this is."), "error")
        elif not preview["problems"]:
            try:
                enrolments.update_instance(s, instance, {WELCOME: source})
            except EnrolkitError as exc:
                s.session.rollback()
                say(message_of(exc), "error")
            else:
                flash(_("The welcome message is saved."), "success")
                return redirect(url_for("course.welcome", instance=instance.id, user=username))
    status = 200
    if preview["problems"] and (request.method == "POST" or preview["status"] in (403, 429)):
        status = preview["status"]
    body = render_template(
        "course/welcome.html",
        course=course,
        candidates=candidates,
        instance=instance,
        source=source,
        username=username,
        variables=extra_text,
        preview=preview,
        default=_(templating.DEFAULT_WELCOME),
        sample=templating.SAMPLE_USERNAME,
        frame_style=FRAME_STYLE,
    )
    return body, *_answered(preview, status)


@bp.post("/welcome/preview")
@course_manager
def welcome_preview(course: Course):
    """The live preview: JSON for the editor's script (429 with Retry-After over the limit)."""
    preview = _welcome_preview(
        course,
        request.form.get("source", ""),
        request.form.get("user", "").strip(),
        request.form.get("variables", ""),
    )
    status = preview["status"] if preview["problems"] and preview["status"] != 400 else 200
    answer = {key: value for key, value in preview.items() if key != "status"}
    return jsonify(answer), *_answered(preview, status)


# --- group names -----------------------------------------------------------------------------


@bp.route("/groups", methods=["GET", "POST"])
@course_manager
def groups(course: Course):
    s = site()
    candidates = _with_setting(course, GROUP)
    chosen = request.values.get("instance", type=int)
    instance = next((i for i in candidates if i.id == chosen), None)
    if chosen and instance is None:
        abort(404)
    source = request.form.get("source")
    if source is None:
        source = (instance.settings or {}).get(GROUP, "") if instance else ""
    source = (source or "").strip("\r\n")
    problems = [
        str(p) for p in templating.validate_group_template(source, templating.custom_field_names(s))
    ]
    if request.method == "POST" and request.form.get("action") == "save" and not problems:
        if instance is None:
            flash(_("Choose the method whose groups these are."), "error")
        else:
            try:
                enrolments.update_instance(s, instance, {GROUP: source})
            except EnrolkitError as exc:
                s.session.rollback()
                say(message_of(exc), "error")
            else:
                flash(_("The group name template is saved."), "success")
                return redirect(url_for("course.groups", instance=instance.id))
    username = request.values.get("user", "").strip()
    samples = []
    if source and not problems:
        samples = _group_samples(course, source, username)
    return render_template(
        "course/groups.html",
        course=course,
        course_groups=list_groups(s, course),
        group_rows=s.session.scalars(
            select(Group).where(Group.course_id == course.id).order_by(Group.name)
        ).all(),
        candidates=candidates,
        instance=instance,
        source=source,
        problems=problems,
        samples=samples,
        username=username,
    ), (400 if problems and request.method == "POST" else 200)


def _group_samples(course: Course, source: str, username: str) -> list[tuple[str, str, str]]:
    """(full name, username, group name) for the sample user, the user asked for and the first
    ten participants, each shown as :func:`_preview_subject` allows."""
    s = site()
    subjects: list[tuple[User | None, frozenset[str] | None]] = [(None, None)]
    if username:
        try:
            subjects.append(_preview_subject(course, username))
        except EnrolkitError as exc:
            say(message_of(exc), "error")
    shown = None if g.user.siteadmin else participants.SHOWN_FIELDS
    for user in s.session.scalars(
        select(User)
        .where(
            User.id.in_(
                select(UserEnrolment.user_id)
                .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
                .where(EnrolInstance.course_id == course.id)
            )
        )
        .order_by(User.username)
        .limit(10)
    ):
        subjects.append((user, None if user.id == g.user.id else shown))
    samples, seen = [], set()
    for user, fields in subjects:
        if user is not None and user.id in seen:
            continue
        seen.add(user.id if user is not None else None)
        name = templating.group_name_for(s, user, source, fields) or ""
        if user is None:
            sample = templating.SAMPLE_USER
            samples.append((sample["fullname"], sample["username"], name))
        else:
            samples.append((user.fullname, user.username, name))
    return samples


# --- the auto-enrol rule ---------------------------------------------------------------------


@bp.get("/rules")
@course_manager
def rules(course: Course):
    candidates = _with_setting(course, RULE)
    if len(candidates) == 1:
        return redirect(url_for("course.rule", instance_id=candidates[0].id))
    return render_template("course/rules.html", course=course, candidates=candidates)


def _rule_text(value: Any) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        try:
            return json.dumps(jsontext.loads(value), indent=2, ensure_ascii=False)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False)


@bp.route("/rules/<int:instance_id>", methods=["GET", "POST"])
@course_manager
def rule(course: Course, instance_id: int):
    s = site()
    instance = _instance(course, instance_id)
    if not forms.has_field(s.plugins.methods.get(instance.method), RULE):
        abort(404)
    text = request.form.get("rule")
    if text is None:
        text = _rule_text((instance.settings or {}).get(RULE))
    error, warnings = rulebuilder.check(s, text)
    explanation = None
    username = request.form.get("user", "").strip()
    action = request.form.get("action")
    status = 200
    if request.method == "POST" and error:
        status = 400
    elif action == "save":
        try:
            enrolments.update_instance(s, instance, {RULE: text})
        except EnrolkitError as exc:
            s.session.rollback()
            error, status = str(exc), 400
        else:
            flash(_("The rule is saved."), "success")
            for warning in warnings:
                flash(warning, "warning")
            return redirect(url_for("course.rule", instance_id=instance.id))
    elif action == "test":
        user = _user_or_none(username)
        if user is not None:
            try:
                explanation = parse(text, s.plugins.conditions).explain(s, user)
            except RuleError as exc:
                error, status = str(exc), 400
    return render_template(
        "course/rule.html",
        course=course,
        instance=instance,
        method=s.plugins.methods.get(instance.method),
        text=text,
        error=error,
        warnings=warnings,
        explanation=explanation,
        username=username,
        builder=rulebuilder.builder_data(s),
    ), status


@bp.post("/rules/try")
@course_manager
def try_rule(course: Course):
    """The rule tester beside the builder on the add form: the posted (unsaved) rule explained
    for one user, as the rule page's tester does, answered as JSON lines for the script."""
    s = site()
    text = request.form.get("rule", "")
    error, _warnings = rulebuilder.check(s, text)
    if error:
        return jsonify(error=error), 400
    username = request.form.get("user", "").strip()
    try:
        user = lookup.user(s.session, username)
    except EnrolkitError as exc:
        return jsonify(error=str(exc)), 404
    explanation = parse(text, s.plugins.conditions).explain(s, user)
    labels = rulebuilder.labels()
    lines: list[dict] = []

    def walk(node, depth: int) -> None:
        text = labels.get(node.op, node.summary) if node.op else f"{node.type}: {node.summary}"
        lines.append({"depth": depth, "passed": node.passed, "text": text})
        for child in node.children:
            walk(child, depth + 1)

    walk(explanation, 0)
    heading = (
        _("%(user)s matches", user=username)
        if explanation.passed
        else _("%(user)s does not match", user=username)
    )
    return jsonify(passed=explanation.passed, heading=heading, lines=lines,
                   marks={"pass": _("pass"), "fail": _("fail")})  # fmt: skip


# --- completion ------------------------------------------------------------------------------


@bp.route("/completion", methods=["GET", "POST"])
@course_manager
def completion(course: Course):
    s = site()
    if request.method == "POST":
        try:
            user = lookup.user(s.session, request.form.get("username", "").strip())
            when = read_time(request.form.get("time"), "time") or s.now()
            done = access.complete_course(s, user, course, when)
        except EnrolkitError as exc:
            say(message_of(exc), "error")
        else:
            flash(
                _("%(user)s has completed %(course)s.", user=user.username, course=course.shortname)
                if done
                else _("%(user)s had already completed it.", user=user.username),
                "success",
            )
        return redirect(url_for("course.completion"))
    return render_template(
        "course/completion.html",
        course=course,
        completions=access.completions(s, course),
        picture=paths.picture(s, course),
        box=paths,
    )
