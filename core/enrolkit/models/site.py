"""The site model: people, the course tree, roles, groups, cohorts, badges, completions."""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import NEVER_REUSED, Base, Timestamp

#: Context levels, as Moodle names them.
SITE, CATEGORY, COURSE = "site", "category", "course"

#: Standard user fields that profile rules, group templates and imports may read.
STANDARD_FIELDS = (
    "username",
    "idnumber",
    "email",
    "firstname",
    "lastname",
    "auth",
    "lang",
    "department",
    "institution",
    "city",
    "country",
)


class User(Base):
    __tablename__ = "users"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    idnumber: Mapped[str] = mapped_column(String(255), default="", index=True)
    email: Mapped[str] = mapped_column(String(255), default="")
    firstname: Mapped[str] = mapped_column(String(100), default="")
    lastname: Mapped[str] = mapped_column(String(100), default="")
    auth: Mapped[str] = mapped_column(String(20), default="manual", index=True)
    lang: Mapped[str] = mapped_column(String(30), default="en", index=True)
    department: Mapped[str] = mapped_column(String(255), default="", index=True)
    institution: Mapped[str] = mapped_column(String(255), default="", index=True)
    city: Mapped[str] = mapped_column(String(120), default="")
    country: Mapped[str] = mapped_column(String(2), default="")
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    siteadmin: Mapped[bool] = mapped_column(Boolean, default=False)
    lastlogin: Mapped[int] = mapped_column(Timestamp, default=0)
    #: The IANA time zone the user reads and types dates in ("Europe/Paris"); '' means the
    #: site's (Moodle's "server time zone", its ``99``).
    timezone: Mapped[str] = mapped_column(String(64), default="", server_default="")
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    #: Part of every web session's signature: raising it (logout, new password, suspension)
    #: ends all the user's sessions at their next request, whatever cookie they still hold.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)
    timemodified: Mapped[int] = mapped_column(Timestamp, default=0)

    @property
    def fullname(self) -> str:
        return f"{self.firstname} {self.lastname}".strip() or self.username


class ProfileField(Base):
    """A custom profile field (Moodle's user_info_field)."""

    __tablename__ = "profile_fields"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortname: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    #: Shown under the field on the profile form (Moodle's ``description``), plain text.
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    datatype: Mapped[str] = mapped_column(String(20), default="text")


class ProfileData(Base):
    __tablename__ = "profile_data"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    field_id: Mapped[int] = mapped_column(
        ForeignKey("profile_fields.id", ondelete="CASCADE"), primary_key=True
    )
    value: Mapped[str] = mapped_column(Text, default="")
    __table_args__ = (Index("ix_profile_data_field_value", "field_id", "value"),)


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    idnumber: Mapped[str] = mapped_column(String(100), default="")
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), default=None)
    #: Materialised path of ids, "/3/7/" for category 7 under 3: subtree queries are a LIKE.
    path: Mapped[str] = mapped_column(String(255), default="", index=True)
    depth: Mapped[int] = mapped_column(Integer, default=1)
    __table_args__ = (UniqueConstraint("parent_id", "name"), NEVER_REUSED)


class Course(Base):
    __tablename__ = "courses"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortname: Mapped[str] = mapped_column(String(255), unique=True)
    fullname: Mapped[str] = mapped_column(String(255), default="")
    idnumber: Mapped[str] = mapped_column(String(100), default="", index=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    startdate: Mapped[int] = mapped_column(Timestamp, default=0)
    enddate: Mapped[int] = mapped_column(Timestamp, default=0)
    enablecompletion: Mapped[bool] = mapped_column(Boolean, default=True)
    visible: Mapped[bool] = mapped_column(Boolean, default=True)
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)


class Role(Base):
    __tablename__ = "roles"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shortname: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    archetype: Mapped[str] = mapped_column(String(30), default="")
    sortorder: Mapped[int] = mapped_column(Integer, default=0)

    @property
    def label(self) -> str:
        """The name people read, a preset's in their language (:func:`enrolkit.roles.label`)."""
        from ..roles import label

        return label(self.shortname, self.name)


class RoleAssignment(Base):
    """A role held in a context. ``component``/``itemid`` name the owner ('' / 0: nobody)."""

    __tablename__ = "role_assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    contextlevel: Mapped[str] = mapped_column(String(10))
    instanceid: Mapped[int] = mapped_column(Integer, default=0)
    component: Mapped[str] = mapped_column(String(100), default="")
    itemid: Mapped[int] = mapped_column(Integer, default=0)
    timemodified: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (
        UniqueConstraint("role_id", "user_id", "contextlevel", "instanceid", "component", "itemid"),
        Index("ix_role_assignments_context", "contextlevel", "instanceid", "role_id"),
        Index("ix_role_assignments_owner", "component", "itemid", "user_id"),
    )


class Group(Base):
    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(254))
    idnumber: Mapped[str] = mapped_column(String(100), default="")
    component: Mapped[str] = mapped_column(String(100), default="")
    itemid: Mapped[int] = mapped_column(Integer, default=0)
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (UniqueConstraint("course_id", "name"), NEVER_REUSED)

    #: Moodle's groups.name column length; templates are cut to it.
    NAME_LENGTH = 254


class GroupMember(Base):
    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(
        ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    component: Mapped[str] = mapped_column(String(100), default="")
    itemid: Mapped[int] = mapped_column(Integer, default=0)
    timeadded: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (
        Index("ix_group_members_user", "user_id"),
        Index("ix_group_members_owner", "component", "itemid", "user_id"),
    )


class Cohort(Base):
    __tablename__ = "cohorts"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idnumber: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(254))
    description: Mapped[str] = mapped_column(Text, default="")
    #: None for a site-level cohort, else the category it lives in.
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), default=None)
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)


class CohortMember(Base):
    __tablename__ = "cohort_members"
    cohort_id: Mapped[int] = mapped_column(
        ForeignKey("cohorts.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    timeadded: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (Index("ix_cohort_members_user", "user_id"),)


class Badge(Base):
    __tablename__ = "badges"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class BadgeAward(Base):
    __tablename__ = "badge_awards"
    badge_id: Mapped[int] = mapped_column(
        ForeignKey("badges.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    timeawarded: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (Index("ix_badge_awards_user", "user_id"),)


class CourseCompletion(Base):
    __tablename__ = "course_completions"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[int] = mapped_column(
        ForeignKey("courses.id", ondelete="CASCADE"), primary_key=True
    )
    timecompleted: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (Index("ix_course_completions_course", "course_id", "timecompleted"),)


class Config(Base):
    """Site settings (component 'core') and each method's site settings (component 'enrol_x')."""

    __tablename__ = "config"
    component: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text, default="")
