"""enrol_meta: course meta links. A target course mirrors the enrolments and roles of a source
course, at once through the change hooks and hourly through a full sync."""

from __future__ import annotations

from enrolkit import hookimpl


@hookimpl
def register_methods(register):
    from .method import MetaMethod

    register(MetaMethod())


@hookimpl
def register_tasks(register):
    from . import sync

    register("meta_sync", sync.full_sync, schedule="20 * * * *", component="enrol_meta")


@hookimpl
def enrolments_changed(site, changes):
    from . import sync

    sync.source_changed(site, changes)


@hookimpl
def role_assignments_changed(site, changes):
    from . import sync

    sync.roles_changed(site, changes)


@hookimpl
def instance_changed(site, change):
    from . import sync

    sync.source_instance_changed(site, change)


@hookimpl
def method_settings_changed(site, method, names):
    from . import sync

    sync.settings_changed(site, method, names)


@hookimpl
def course_deleted(site, course_id):
    from . import sync

    sync.source_deleted(site, course_id)
