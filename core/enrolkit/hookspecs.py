"""Every hook of enrolkit, in one place.

A plugin is a module of functions marked ``@enrolkit.hookimpl`` whose names and argument names match
these specs (a plugin may accept fewer arguments than a spec offers). The core calls hooks only
through :class:`enrolkit.plugins.Plugins`, always with keyword arguments. ``docs/hooks.md`` documents
each hook with its exact signature; a test keeps the two in step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click
    from flask import Blueprint
    from marshmallow import Schema

    from .changes import (
        CourseAccess,
        EnrolmentChanges,
        InstanceChange,
        ProfileChange,
        RoleChange,
    )
    from .methods import EnrolMethod
    from .models import Course, User
    from .site import Site

hookspec = pluggy.HookspecMarker("enrolkit")

# --- Registration: called once when a site's plugins load ------------------------------------


@hookspec
def register_methods(register: Callable[[EnrolMethod], None]) -> None:
    """Contribute enrolment methods.

    Call ``register(method)`` with an :class:`enrolkit.EnrolMethod` instance for each method the
    plugin provides. Method names are unique across the site: a second method with a taken name
    stops start-up with an error naming both plugins.

    :param register: takes one ``EnrolMethod``.
    """


@hookspec
def register_tasks(register: Callable[..., None]) -> None:
    """Contribute scheduled tasks.

    Call ``register(name, run, schedule="0 * * * *", component=...)``:
    ``name`` is unique on the site, ``run(site)`` does the work (``site.origin`` is ``cron``; it
    commits through ``site.atomic()``) and may return a one-line result (a
    :class:`~enrolkit.texts.Text`, stored with its message id, so the tasks page shows it in its
    reader's language), ``schedule`` is the default cron expression in UTC (the admin may change it; a bad one stops start-up). Each task
    runs under a database lock, so two cron runners never run it twice at once. The lock is a
    lease the runner renews while the task runs: a killed runner's lock is free again within
    ``ENROLKIT_TASK_LEASE`` seconds (60), at once on its own machine. An exception marks the run
    failed (logged as ``task_failed``) and the task runs again at its next time.

    :param register: takes ``name``, ``run`` and the keyword arguments above.
    """


@hookspec
def register_conditions(register: Callable[..., None]) -> None:
    """Contribute rule condition types (the ``type`` of a node in a rule tree).

    Call ``register(condition_type)`` with an object that validates a node, evaluates it for one
    user in Python, compiles it to a SQL condition and explains its result. The built-in types
    (``profile``, ``date``, ``badge``, ``completion``, ``cohort``, ``language``, ``auth``) are
    registered the same way.

    :param register: takes one condition type.
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Contribute commands to the ``enrolkit`` command line.

    Called once when ``enrolkit`` starts, before the command line is parsed (so ``--help`` lists
    the commands), and by the ``cli`` test fixture. Add a click group or command with
    ``cli.add_command(...)``; use a name of your own (``flatfile``, not ``user``), since a second
    command of the same name replaces the first. Inside a command, ``enrolkit.cli.output.open_site``
    opens a site; raise :class:`enrolkit.EnrolkitError` for errors a user can act on.

    :param cli: the ``enrolkit`` click group.
    """


@hookspec
def register_blueprints(register: Callable[[Blueprint], None]) -> None:
    """Contribute web pages: Flask blueprints mounted on the web app.

    Called once when the web app is built. Call ``register(blueprint)`` for each; make it with
    :func:`enrolkit.web.pages.blueprint`, which mounts it under ``/plugins/<component>/`` and
    finds its templates in the package's ``templates/<component>/``. Every view must carry one
    of the core's permission decorators (``public``, ``login_required``, ``course_manager``,
    ``admin_required`` from :mod:`enrolkit.web.pages`): the app refuses to start otherwise.
    CSRF protection covers every form as it does the core's; texts go through ``_()`` and the
    plugin's own catalog (``translations/``).

    :param register: takes one ``flask.Blueprint``.
    """


@hookspec
def register_migrations(register: Callable[[str], None]) -> None:
    """Contribute the Alembic migrations of a plugin's own tables.

    Call ``register(path)`` with the folder of the plugin's Alembic version files. Each plugin's
    migrations form their own branch: the first file has ``down_revision = None``,
    ``branch_labels = ("enrol_<name>",)`` and ``depends_on = "0001"`` (the core's first revision).
    ``enrolkit db upgrade`` upgrades the core and every registered branch to their heads, so
    installing a plugin and upgrading again creates its tables. Tables are declared on
    ``enrolkit.models.Base``.

    :param register: takes the path of a folder of Alembic version files.
    """


# --- People's actions: fired by the LMS, the web, the API or the CLI -------------------------


@hookspec
def on_login(site: Site, user: User) -> None:
    """A user logged in to the site.

    Fires after the login (``user.lastlogin`` and its log entry) is committed, in a transaction
    of its own, for every login (web, API, ``enrolkit user login``): when the hook's work fails
    or its process dies, the login stays recorded and a scheduled task can catch the user up.
    Methods return nothing; they apply plans through ``site.engine``. Keep it fast: it runs on
    every login.

    :param site: the site (database session, plugins, origin).
    :param user: the user who logged in.
    """


@hookspec
def on_course_view(
    site: Site, user: User, course: Course, enrolled: bool
) -> CourseAccess | list[CourseAccess] | None:
    """A user opened a course.

    Every method may answer with a :class:`CourseAccess`, or a list of them (one per instance).
    The core grants access when the user is enrolled (``enrolled`` is then true, and methods
    usually return None) or when any answer is ``granted``; otherwise it offers every
    ``confirm`` (each with its own "Enrol me", in the order given), otherwise it denies with the
    reasons of the ``denied`` answers.

    :param site: the site.
    :param user: the viewer.
    :param course: the course opened.
    :param enrolled: whether the user already has an active, current enrolment in the course.
    :return: a decision, a list of decisions, or None to stay silent.
    """


@hookspec
def on_completion(site: Site, user: User, course: Course, timecompleted: int) -> None:
    """A user completed a course.

    Fires once per new completion (a repeated completion of the same course does not fire),
    after the completion is stored, in the same transaction.

    :param site: the site.
    :param user: who completed.
    :param course: the completed course.
    :param timecompleted: when, in Unix seconds (may be in the past for a recorded equivalence).
    """


@hookspec
def on_cron(site: Site, now: int) -> None:
    """A cron run is starting.

    Fired once at the start of every ``enrolkit cron`` run, before the due scheduled tasks run,
    outside any task lock, in its own transaction. Use it for cheap bookkeeping that must happen on
    every run; put real work in a scheduled task (``register_tasks``), which has a schedule, a lock
    and a result. An exception rolls the hook's transaction back and is logged (``cron_failed``);
    the tasks still run and the run exits non-zero.

    :param site: the site, with origin ``cron``.
    :param now: the run's time in Unix seconds.
    """


# --- Settings ---------------------------------------------------------------------------------


@hookspec(firstresult=True)
def render_settings(
    site: Site, method: EnrolMethod, scope: str, schema: Schema, values: dict, errors: dict
) -> str | None:
    """Render the settings form of a method as HTML.

    ``scope`` is ``"site"`` (the method's site-wide settings) or ``"instance"`` (one course's
    instance). The core's default renders any marshmallow schema (labels, help and widgets from
    field metadata); a plugin implements this hook only to customise its own method's form and
    returns None for other methods. Stops at the first non-None result; plugins run before the
    core default.

    :param site: the site.
    :param method: the method whose form is wanted.
    :param scope: ``"site"`` or ``"instance"``.
    :param schema: the marshmallow schema instance for that scope.
    :param values: the current or submitted values.
    :param errors: per-field error messages from the last submission (empty when none).
    :return: HTML, or None to let another plugin (or the default) render.
    """


# --- Change notifications: fired once per batch, inside the transaction that made it ---------


@hookspec
def enrolments_changed(site: Site, changes: tuple[EnrolmentChanges, ...]) -> None:
    """Enrolments were created, updated, suspended or removed.

    Fired once per applied batch of plans (``Engine.apply_many``; ``apply`` is a batch of one),
    not per plan nor per user, after the engine's writes and before commit: a plan applied here
    joins the same transaction, and an exception rolls the whole change back. A hook that
    applies plans in reaction applies them as one batch too.

    :param site: the site.
    :param changes: one record per instance that changed, in the order of the batch's plans:
        the user ids per kind of change, with the instance, course, method and reason.
    """


@hookspec
def cohort_members_changed(
    site: Site, cohort_id: int, added: tuple[int, ...], removed: tuple[int, ...]
) -> None:
    """Users joined or left a cohort (one call per cohort and batch).

    :param site: the site.
    :param cohort_id: the cohort.
    :param added: user ids that joined.
    :param removed: user ids that left.
    """


@hookspec
def cohort_deleted(site: Site, cohort_id: int) -> None:
    """A cohort is about to be deleted (its members are still readable).

    :param site: the site.
    :param cohort_id: the cohort being deleted.
    """


@hookspec
def role_assignments_changed(site: Site, changes: Sequence[RoleChange]) -> None:
    """Roles were assigned or unassigned, in any context (one call per batch).

    :param site: the site.
    :param changes: each assignment added or removed: a read-only sequence (iterate, index,
        ``len``; ``tuple(changes)`` for a tuple). An engine batch builds its records when a
        hook first reads them, so a hook that returns early costs nothing per role.
    """


@hookspec
def profile_changed(site: Site, change: ProfileChange) -> None:
    """User profiles changed (edit, import, ``enrolkit user set``, API): one call per batch.

    :param site: the site.
    :param change: the users and the fields that changed.
    """


@hookspec
def courses_changed(site: Site, course_ids: tuple[int, ...]) -> None:
    """Courses were created or moved to another category (one call per batch).

    :param site: the site.
    :param course_ids: the courses created or moved.
    """


@hookspec
def course_deleted(site: Site, course_id: int) -> None:
    """A course is about to be deleted; its instances and enrolments are still readable.

    The core then deletes the course's instances (each unenrolling its users and firing
    ``instance_changed``), groups, roles and pending actions, in the same transaction.

    :param site: the site.
    :param course_id: the course being deleted.
    """


@hookspec
def instance_changed(site: Site, change: InstanceChange) -> None:
    """An enrolment instance was created, updated, enabled, disabled or deleted.

    Fired once per change, after the instance's own plan (its sync, or what disabling it does)
    and in the same transaction, so a method that follows another course (a meta link following
    its source) reacts at once. A dry run does not fire it.

    :param site: the site.
    :param change: the instance id, course id, method, kind of change and whether it is enabled.
    """


@hookspec
def method_settings_changed(site: Site, method: str, names: tuple[str, ...]) -> None:
    """Site-wide settings of a method changed (``enrolkit method set``, the web, the API).

    Fired once per save, only for settings whose stored value really changed, inside the
    transaction that stores them, so a method can re-sync at once (e.g. the roles category
    enrolments synchronise).

    :param site: the site.
    :param method: the method's name.
    :param names: the settings that changed.
    """
