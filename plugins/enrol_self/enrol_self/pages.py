"""The plugin's own web page: a course's self-enrolment instances at a glance, for its
teachers (places taken, the window, whether keys are set). Mounted by ``register_blueprints``
at ``/plugins/enrol_self/course/<id>``."""

from __future__ import annotations

from enrolkit.web import pages

from . import COMPONENT
from .offers import instances, taken

bp = pages.blueprint(COMPONENT, __name__)


@bp.get("/course/<int:course_id>")
@pages.course_manager
def overview(course):
    site = pages.site()
    rows = [
        {
            "instance": instance,
            "name": site.plugins.method("self").display_name(instance),
            "taken": taken(site, instance),
            "settings": instance.settings or {},
        }
        for instance in instances(site, course)
    ]
    return pages.render_template(f"{COMPONENT}/overview.html", course=course, rows=rows)
