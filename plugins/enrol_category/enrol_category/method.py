"""The category enrolments method: a role held in a category enrols into the courses below it."""

from __future__ import annotations

from enrolkit import UNENROL, EnrolMethod, Plan, lookup
from enrolkit.errors import Where
from enrolkit.models import Course, EnrolInstance, User
from enrolkit.site import Site
from enrolkit.texts import Text

from . import sync as category_sync
from .schemas import CategorySiteSettings


class CategoryMethod(EnrolMethod):
    name = category_sync.NAME
    title = Text("Category enrolments")
    site_schema = CategorySiteSettings
    multiple_instances = False
    manual_instances = False
    manual_unenrol = False
    default_removal = UNENROL

    def default_role(self, site: Site) -> None:
        """Users get the roles they hold in the category; the instance has none of its own."""
        return None

    def removal_action(self, site: Site, instance: EnrolInstance) -> str:
        """Losing the category role always unenrols (there is no setting, as in Moodle)."""
        return UNENROL

    def refusal(self, site: Site, instance: EnrolInstance) -> Text:
        return Text(
            "the enrolment comes from a role held in the course's category; unassign that role "
            "in the category instead"
        )

    def where_to_act(
        self, site: Site, instance: EnrolInstance, user: User
    ) -> tuple[str, Where] | None:
        course = site.session.get(Course, instance.course_id)
        if course is None or not course.category_id:
            return None
        path = lookup.category_path(site.session, course.category_id)
        return f"enrolkit role unassign ROLE {user.username} --category '{path}'", Where(
            Text("the roles of %(user)s in the category %(category)s", user=user.fullname,
                 category=path),
            "admin.category",
            {"category_id": course.category_id},
        )  # fmt: skip

    def sync(self, site: Site, instance: EnrolInstance) -> Plan:
        return category_sync.plan(site, instance, "instance saved")
