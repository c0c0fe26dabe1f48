"""What a plugin's own web pages use: a blueprint mounted where plugins' pages live, and the
core's permission decorators and per-request site.

::

    from enrolkit.web import pages

    bp = pages.blueprint("enrol_self", __name__)

    @bp.get("/course/<int:course_id>/keys")
    @pages.course_manager
    def keys(course):
        return pages.render_template("enrol_self/keys.html", course=course)

and in the plugin's ``__init__.py``::

    @enrolkit.hookimpl
    def register_blueprints(register):
        from .pages import bp

        register(bp)
"""

from __future__ import annotations

from flask import Blueprint, Flask, render_template

from ..errors import EnrolkitError
from .guards import admin_required, course_manager, login_required, public, site

__all__ = [
    "admin_required",
    "blueprint",
    "course_manager",
    "login_required",
    "public",
    "render_template",
    "site",
]

#: Where plugins' pages are mounted: ``/plugins/<component>/...``.
PREFIX = "/plugins"


def blueprint(component: str, import_name: str) -> Blueprint:
    """A blueprint named ``component`` (``enrol_self``) mounted at ``/plugins/<component>``,
    whose templates come from the package's ``templates/`` folder. Keep them under
    ``templates/<component>/`` and render them by that name: the core's and other plugins'
    templates share one search path, and the site's override folder comes first."""
    return Blueprint(
        component, import_name, url_prefix=f"{PREFIX}/{component}", template_folder="templates"
    )


def mount(app: Flask, blueprints: list[Blueprint]) -> None:
    """Register the plugins' blueprints, refusing a view without a permission decorator: a
    forgotten one would open a page to everyone."""
    for bp in blueprints:
        app.register_blueprint(bp)
    for endpoint, view in app.view_functions.items():
        owner = endpoint.partition(".")[0]
        if owner in {bp.name for bp in blueprints} and not hasattr(view, "permission"):
            raise EnrolkitError(
                f"the plugin page {endpoint} has no permission decorator; add one of "
                "enrolkit.web.pages.public, login_required, course_manager or admin_required"
            )
