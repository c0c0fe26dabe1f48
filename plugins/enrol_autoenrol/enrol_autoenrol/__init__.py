"""enrol_autoenrol: conditional enrolment on login, on course view or on confirmation.

An instance in a course holds a rule (a condition tree in Moodle's availability JSON). Users who
match it are enrolled, with the instance's role, duration and template-named group: when they log
in (``mode=login``; also by the hourly task, for users who logged in before), when they open the
course (``mode=view``), or when they confirm ("Enrol me", ``mode=confirm``). The daily task and
each login re-check enrolled users: who no longer matches, ran out of time or stopped logging in
gets the instance's removal action. ``enrolkit rule test INSTANCE USERNAME`` explains a rule for
one user. Disabled on a fresh site: ``enrolkit method enable autoenrol``. Log component
``enrol_autoenrol``.
"""

from __future__ import annotations

from pathlib import Path

from enrolkit import hookimpl

#: The method's name (:data:`.matching.NAME`), here so the hooks need not import the method.
NAME = "autoenrol"

__all__ = ["AutoenrolMethod", "PrefilterPair"]


def __getattr__(name: str):
    """The public classes, imported on first use: this module stays light for start-up."""
    if name == "AutoenrolMethod":
        from .method import AutoenrolMethod

        return AutoenrolMethod
    if name == "PrefilterPair":
        from .prefilter import PrefilterPair

        return PrefilterPair
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_methods(register):
    from .method import AutoenrolMethod

    register(AutoenrolMethod())


@hookimpl
def register_migrations(register):
    register(Path(__file__).parent / "migrations")


@hookimpl
def register_tasks(register):
    from . import tasks

    register(
        "autoenrol_enrolments",
        tasks.process_enrolments,
        schedule="20 * * * *",
        component="enrol_autoenrol",
    )
    register(
        "autoenrol_expiry", tasks.process_expiry, schedule="40 2 * * *", component="enrol_autoenrol"
    )


@hookimpl
def register_commands(cli):
    from .cli import rule

    cli.add_command(rule)


@hookimpl
def on_login(site, user):
    from . import login

    login.on_login(site, user)


@hookimpl
def on_course_view(site, user, course, enrolled):
    from . import view

    return view.on_course_view(site, user, course, enrolled)


@hookimpl
def enrolments_changed(site, changes):
    """Welcome the users a batch enrolled, for all its auto-enrol instances at once."""
    enrolled = [change for change in changes if change.method == NAME and change.enrolled]
    if enrolled:
        from enrolkit.models import EnrolInstance
        from sqlalchemy import select

        from . import welcome

        ids = [change.instance_id for change in enrolled]
        instances = {
            instance.id: instance
            for instance in site.session.scalars(
                select(EnrolInstance).where(EnrolInstance.id.in_(ids))
            )
        }
        welcome.send(site, [(instances[c.instance_id], c.enrolled) for c in enrolled])


@hookimpl
def profile_changed(site, change):
    """Users whose profile changed move to the groups their new values name, at once."""
    if site.method_enabled(NAME):
        from . import groups

        groups.profile_changed(site, change.user_ids, change.fields)
