"""enrol_self: self enrolment, Moodle's enrol_self. A user opens a course and enrols with
"Enrol me", giving the instance's enrolment key (or a group key, which also puts them in that
group) where one is set; the instance may cap its places, open a window, give each enrolment a
duration and unenrol who stays away too long.

Built only with enrolkit's public contract; each hook imports its module when called, so that
``enrolkit --help`` loads nothing heavy.
"""

from __future__ import annotations

import enrolkit

NAME = "self"
COMPONENT = "enrol_self"


@enrolkit.hookimpl
def register_methods(register):
    from .method import SelfMethod

    register(SelfMethod())


@enrolkit.hookimpl
def register_tasks(register):
    from .inactivity import unenrol_inactive

    register("self_unenrol_inactive", unenrol_inactive, schedule="10 * * * *", component=COMPONENT)


@enrolkit.hookimpl
def on_course_view(site, user, course, enrolled):
    from .offers import answers

    return answers(site, user, course, enrolled)


@enrolkit.hookimpl
def enrolments_changed(site, changes):
    from . import welcome

    for change in changes:
        welcome.send(site, change)


@enrolkit.hookimpl
def register_blueprints(register):
    from .pages import bp

    register(bp)
