"""enrol_category: category enrolments. A user holding a synchronised role in a category is
enrolled, with that role, in every course of the category and its subcategories."""

from __future__ import annotations

from enrolkit import hookimpl


@hookimpl
def register_methods(register):
    from .method import CategoryMethod

    register(CategoryMethod())


@hookimpl
def register_tasks(register):
    from . import sync

    register("category_sync", sync.full_sync, schedule="30 * * * *", component="enrol_category")


@hookimpl
def role_assignments_changed(site, changes):
    from . import sync

    sync.roles_changed(site, changes)


@hookimpl
def courses_changed(site, course_ids):
    from . import sync

    sync.courses_changed(site, course_ids, "course created or moved")


@hookimpl
def method_settings_changed(site, method, names):
    from . import sync

    sync.settings_changed(site, method, names)
