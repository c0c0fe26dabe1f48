"""enrol_cohort: cohort sync. Members of a cohort are enrolled in a course, with a role and
optionally a group, as they join; they get the removal action as they leave."""

from __future__ import annotations

from enrolkit import hookimpl

from . import sync
from .method import CohortMethod


@hookimpl
def register_methods(register):
    register(CohortMethod())


@hookimpl
def register_tasks(register):
    register("cohort_sync", sync.full_sync, schedule="10 * * * *", component="enrol_cohort")


@hookimpl
def cohort_members_changed(site, cohort_id, added, removed):
    sync.members_changed(site, cohort_id, added, removed)


@hookimpl
def cohort_deleted(site, cohort_id):
    sync.cohort_deleted(site, cohort_id)


@hookimpl
def courses_changed(site, course_ids):
    sync.courses_moved(site, course_ids)
