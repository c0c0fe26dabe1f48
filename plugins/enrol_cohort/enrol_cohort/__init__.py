"""enrol_cohort: cohort sync. Members of a cohort are enrolled in a course, with a role and
optionally a group, as they join; they get the removal action as they leave."""

from __future__ import annotations

from enrolkit import hookimpl


@hookimpl
def register_methods(register):
    from .method import CohortMethod

    register(CohortMethod())


@hookimpl
def register_tasks(register):
    from . import sync

    register("cohort_sync", sync.full_sync, schedule="10 * * * *", component="enrol_cohort")


@hookimpl
def cohort_members_changed(site, cohort_id, added, removed):
    from . import sync

    sync.members_changed(site, cohort_id, added, removed)


@hookimpl
def cohort_deleted(site, cohort_id):
    from . import sync

    sync.cohort_deleted(site, cohort_id)


@hookimpl
def courses_changed(site, course_ids):
    from . import sync

    sync.courses_moved(site, course_ids)
