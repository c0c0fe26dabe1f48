"""The base class of an enrolment method. A plugin subclasses it and registers an instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from marshmallow import Schema, fields

    from .engine import Plan
    from .errors import Where
    from .models import Course, EnrolInstance
    from .site import Site

#: What happens to an enrolment whose source no longer wants it (Moodle's ENROL_EXT_REMOVED_*).
UNENROL, SUSPEND, SUSPEND_NOROLES, KEEP = "unenrol", "suspend", "suspend_noroles", "keep"
REMOVAL_ACTIONS = (UNENROL, SUSPEND, SUSPEND_NOROLES, KEEP)


def removal_field(default: str, choices: tuple[str, ...] = REMOVAL_ACTIONS) -> fields.String:
    """The site setting every syncing method has: what to do when a user leaves the source."""
    from marshmallow import fields, validate

    return fields.String(
        load_default=default,
        validate=validate.OneOf(choices),
        metadata={
            "label": "Removal action",
            "help": "What happens to an enrolment when its source no longer includes the user.",
            "choices": choices,
        },
    )


def expiry_field(default: str, choices: tuple[str, ...] = REMOVAL_ACTIONS) -> fields.String:
    """The site setting ``expiry_action``, for a method whose enrolments can end: what the
    end-date task does to one whose end date has passed (read by
    :meth:`EnrolMethod.expiry_action`)."""
    from marshmallow import fields, validate

    return fields.String(
        load_default=default,
        validate=validate.OneOf(choices),
        metadata={
            "label": "When an enrolment ends",
            "help": "What happens when an enrolment's end date passes.",
            "choices": choices,
        },
    )


class EnrolMethod:
    """One way users get into courses. Subclass, set the class attributes, override as needed.

    A method never writes enrolments itself: it returns or applies a :class:`enrolkit.Plan`
    through ``site.engine``, which diffs, guards, writes in sets, logs and notifies.
    """

    #: Short name: the entry-point name and the ``method`` of its instances.
    name: ClassVar[str]
    #: Human title shown in lists.
    title: ClassVar[str] = ""
    #: Settings of one course instance (loaded from CLI ``KEY=VALUE`` strings or forms).
    instance_schema: ClassVar[type[Schema] | None] = None
    #: Site-wide settings of the method.
    site_schema: ClassVar[type[Schema] | None] = None
    #: Whether a fresh site has the method enabled.
    enabled_by_default: ClassVar[bool] = False
    #: Whether a course may hold several instances of the method.
    multiple_instances: ClassVar[bool] = True
    #: Whether an admin or teacher may unenrol users of this method by hand.
    manual_unenrol: ClassVar[bool] = True
    #: Whether a *suspended* enrolment may be unenrolled by hand even so (Moodle's cohort sync
    #: and meta links: "Unenrol suspended users"); an active one stays the source's.
    manual_unenrol_suspended: ClassVar[bool] = False
    #: Whether people may add instances by hand (False for methods that create their own).
    manual_instances: ClassVar[bool] = True
    #: Removal action used when the site setting ``removal`` is absent.
    default_removal: ClassVar[str] = UNENROL
    #: Whether a disabled instance gives up the roles it assigned (Moodle's cohort sync and meta
    #: links do, unless the removal action keeps roles: ``suspend`` or ``keep``).
    roles_follow_enabled: ClassVar[bool] = False
    #: What "Enrol me" asks the user (an enrolment key, a choice): the CLI's ``--field``, the
    #: API's ``fields`` and the course page's form are loaded through it, and
    #: :meth:`confirm_enrolment` receives the loaded data. None: the method asks nothing.
    enrol_me_schema: ClassVar[type[Schema] | None] = None
    #: "Enrol me" attempts one user may make on one instance per :attr:`enrol_me_window`
    #: seconds (a success starts the count afresh), so an enrolment key cannot be guessed by
    #: trying; None: no limit. Counted in the database, so every process and node shares it.
    enrol_me_attempts: ClassVar[int | None] = None
    enrol_me_window: ClassVar[int] = 15 * 60
    #: What the end-date task does to an enrolment of this method whose end date has passed,
    #: when the site setting ``expiry_action`` is absent. ``keep`` leaves it: it stops counting
    #: (a user is in a course only while an enrolment is current) but stays listed.
    default_expiry_action: ClassVar[str] = KEEP

    @property
    def component(self) -> str:
        return f"enrol_{self.name}"

    def refusal(self, site: Site, instance: EnrolInstance) -> str:
        """Why a manual unenrol is refused, and where to act instead, naming things (never an
        id or a command: the web and the API show it as it is)."""
        from .texts import Text

        return Text("this enrolment belongs to %(method)s; change its source instead",
                    method=self.title or self.name)  # fmt: skip

    def where_to_act(self, site: Site, instance: EnrolInstance, user) -> tuple[str, Where] | None:
        """Where to end ``user``'s enrolment instead when :meth:`refusal` applies: the CLI
        command and the page of the web admin (:class:`enrolkit.errors.Where`); None when the
        refusal says it all."""
        return None

    def may_unenrol_by_hand(self, status: int) -> bool:
        """Whether an enrolment of this method in ``status`` may be removed by hand."""
        from .models import SUSPENDED

        return self.manual_unenrol or (self.manual_unenrol_suspended and status == SUSPENDED)

    def removal_action(self, site: Site, instance: EnrolInstance) -> str:
        """The removal action for ``instance``; the site setting ``removal`` by default."""
        return site.method_settings(self.name).get("removal", self.default_removal)

    def expiry_action(self, site: Site) -> str:
        """What the hourly ``enforce_end_dates`` task does to this method's enrolments whose
        end date has passed: ``unenrol``, ``suspend``, ``suspend_noroles`` or ``keep`` (Moodle's
        ``expiredaction``). By default the site setting ``expiry_action`` (declare it with
        :func:`expiry_field` in ``site_schema`` to let the admin choose), else
        :attr:`default_expiry_action`."""
        return site.method_settings(self.name).get("expiry_action", self.default_expiry_action)

    def prepare_instance(self, site: Site, course: Course, settings: dict) -> dict:
        """Check and normalise loaded instance settings against the site (e.g. that a cohort
        exists). Raise :class:`enrolkit.SettingsError` with per-field messages on a problem."""
        return settings

    def sync(self, site: Site, instance: EnrolInstance) -> Plan | None:
        """The plan that brings ``instance`` up to date, or None when the method has no source.

        Called when an instance is created or re-enabled, and by a method's own full-sync task.
        """
        return None

    def disable(self, site: Site, instance: EnrolInstance) -> Plan | None:
        """The plan applied when ``instance`` is disabled, or None.

        Its enrolments stay (a disabled instance lets nobody in, and enabling it again restores
        access); with :attr:`roles_follow_enabled` the roles it assigned go too, unless the
        removal action keeps roles. Enabling runs :meth:`sync`, which gives them back."""
        if not self.roles_follow_enabled or self.removal_action(site, instance) in (SUSPEND, KEEP):
            return None
        from sqlalchemy import select

        from .engine import UNASSIGN, Change, Plan
        from .models import RoleAssignment

        owned = site.session.execute(
            select(RoleAssignment.user_id, RoleAssignment.role_id).where(
                RoleAssignment.component == self.component, RoleAssignment.itemid == instance.id
            )
        )
        changes = [Change(user_id, op=UNASSIGN, role_id=role_id) for user_id, role_id in owned]
        return Plan(instance.id, reason="instance disabled", changes=changes) if changes else None

    def backfill(self, site: Site, instance: EnrolInstance) -> Plan | None:
        """The first plan of a new instance when it is added with ``--backfill``, instead of
        :meth:`sync`: enrol the people who would have been enrolled had the instance existed
        before (e.g. everyone who already completed a course). It may also schedule pending
        actions. Methods without such a notion refuse."""
        from .errors import Refused

        raise Refused(f"{self.title or self.name} has nothing to backfill")

    def instance_saved(self, site: Site, instance: EnrolInstance) -> None:
        """An instance was created, or its settings were changed, in the current transaction:
        keep the method's own tables in step (e.g. an index of the courses instances name)."""

    def site_enabled(self, site: Site) -> None:
        """The method was just enabled on the site, in the current transaction: prepare what
        it needs to work (the flat file makes its drop folder). Raise an ``EnrolkitError`` to
        refuse the enabling; it is then not recorded."""

    def display_name(self, instance: EnrolInstance) -> str:
        return instance.name or self.title or self.name

    def default_role(self, site: Site) -> str | None:
        """Shortname of the role new instances get when none is given."""
        return site.method_settings(self.name).get("role", "student")

    def enrol_me_schema_for(self, site: Site, instance: EnrolInstance) -> type[Schema] | None:
        """What "Enrol me" on ``instance`` asks: :attr:`enrol_me_schema` by default. Override
        when it depends on the instance (a key only where one is set)."""
        return self.enrol_me_schema

    def confirm_enrolment(self, site: Site, instance: EnrolInstance, user, data: dict) -> None:
        """The user clicked "Enrol me" on an instance that answered ``confirm`` to a course view.
        Methods offering confirmation override this to apply their plan.

        Called by :func:`enrolkit.access.enrol_me` inside the transaction of the enrolment, with
        ``data`` loaded by :attr:`enrol_me_schema` (``{}`` without one). Raise
        :class:`enrolkit.Refused` to say no: the transaction is rolled back and the refusal is
        logged (``enrol_me_refused``) in a transaction of its own.

        An override written for enrolkit 0.1, without ``data``, still works and warns
        (``DeprecationWarning``) until 0.3."""
        from .errors import Refused

        raise Refused(f"{self.title or self.name} does not offer self-enrolment")
