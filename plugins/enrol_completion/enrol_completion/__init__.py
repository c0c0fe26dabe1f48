"""enrol_completion: enrolment in the next course when a course is completed.

An instance in course B names a source course A. A completion of A (``enrolkit course
complete``, the API or the web) enrols the user in B at once or after a delay, within the
instance's window; the welcome message follows the enrolment. ``enrolkit instance add B
completion source=A --backfill`` also enrols A's past completers. Log component
``enrol_completion``.
"""

from __future__ import annotations

from pathlib import Path

from enrolkit import hookimpl

#: The method's name (:data:`.sources.METHOD`), here so the hooks need not import the method.
METHOD = "completion"

__all__ = ["CompletionMethod", "CompletionSource"]


def __getattr__(name: str):
    """The public classes, imported on first use: this module stays light for start-up."""
    if name == "CompletionMethod":
        from .method import CompletionMethod

        return CompletionMethod
    if name == "CompletionSource":
        from .sources import CompletionSource

        return CompletionSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@hookimpl
def register_methods(register):
    from .method import CompletionMethod

    register(CompletionMethod())


@hookimpl
def register_migrations(register):
    register(Path(__file__).parent / "migrations")


@hookimpl
def register_commands(cli):
    from . import cli as commands

    commands.register(cli)


@hookimpl
def on_completion(site, user, course, timecompleted):
    from . import reaction

    reaction.completed(site, user, course, timecompleted)


@hookimpl
def enrolments_changed(site, changes):
    """Users a completion instance enrolled or updated, at once or by a pending action, join its
    group (and with ``keepgroup`` the groups named like theirs in the completed course) and get
    their welcome message; with ``unenrol_source`` the newly enrolled leave the completed
    course."""
    for change in changes:
        if change.method == METHOD and (change.enrolled or change.updated):
            _arrived(site, change)


def _arrived(site, change) -> None:
    from enrolkit.models import Course, EnrolInstance

    from . import aftermath, groups, sources, welcome

    arrived = change.enrolled + change.updated
    instance = site.session.get(EnrolInstance, change.instance_id)
    groups.join(site, instance, arrived)
    settings = instance.settings or {}
    source = sources.source_of(site, instance.id)
    if source is not None and settings.get("keepgroup", True):
        aftermath.keep_groups(site, instance, source, arrived)
    welcome.send(site, instance, arrived)
    if source is not None and settings.get("unenrol_source", False):
        target = site.session.get(Course, instance.course_id)
        aftermath.unenrol_from_source(site, source, target, change.enrolled)


@hookimpl
def course_deleted(site, course_id):
    """The completed course is being deleted: the instances waiting for it go, with their
    enrolments and pending actions, as Moodle's ``before_course_deleted`` listener does."""
    from enrolkit.enrolments import delete_instance

    from . import sources

    for instance in sources.waiting_for(site, course_id, enabled_only=False):
        delete_instance(site, instance, reason="completed course deleted")
