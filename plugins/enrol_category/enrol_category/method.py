"""The category enrolments method: a role held in a category enrols into the courses below it."""

from __future__ import annotations

from enrolkit import UNENROL, EnrolMethod, Plan
from enrolkit.models import EnrolInstance
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

    def refusal(self, site: Site, instance: EnrolInstance) -> str:
        return (
            f"the enrolment comes from a role held in the course's category (instance "
            f"{instance.id}); unassign that role in the category instead"
        )

    def sync(self, site: Site, instance: EnrolInstance) -> Plan:
        return category_sync.plan(site, instance, "instance saved")
