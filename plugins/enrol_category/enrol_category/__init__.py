"""enrol_category: category enrolments. A user holding a synchronised role in a category is
enrolled, with that role, in every course of the category and its subcategories."""

from __future__ import annotations

from enrolkit import hookimpl

from . import sync
from .method import CategoryMethod


@hookimpl
def register_methods(register):
    register(CategoryMethod())


@hookimpl
def register_tasks(register):
    register("category_sync", sync.full_sync, schedule="30 * * * *", component="enrol_category")


@hookimpl
def role_assignments_changed(site, changes):
    sync.roles_changed(site, changes)


@hookimpl
def courses_changed(site, course_ids):
    sync.courses_changed(site, course_ids, "course created or moved")


@hookimpl
def method_settings_changed(site, method, names):
    sync.settings_changed(site, method, names)
