"""Every table of the core. Plugins import from here; Alembic reads ``Base.metadata``."""

from .base import Base, Timestamp
from .enrolment import ACTIVE, SUSPENDED, EnrolInstance, HeldPlan, LogEntry, UserEnrolment
from .services import ApiToken, MailMessage, PendingAction, ScheduledTask
from .site import (
    CATEGORY,
    COURSE,
    SITE,
    STANDARD_FIELDS,
    Badge,
    BadgeAward,
    Category,
    Cohort,
    CohortMember,
    Config,
    Course,
    CourseCompletion,
    Group,
    GroupMember,
    ProfileData,
    ProfileField,
    Role,
    RoleAssignment,
    User,
)

__all__ = [
    "ACTIVE", "SUSPENDED", "CATEGORY", "COURSE", "SITE", "STANDARD_FIELDS",
    "ApiToken", "Badge", "BadgeAward", "Base", "Category", "Cohort", "CohortMember", "Config",
    "Course", "CourseCompletion", "EnrolInstance", "Group", "GroupMember", "HeldPlan", "LogEntry",
    "MailMessage", "PendingAction", "ProfileData", "ProfileField", "Role", "RoleAssignment",
    "ScheduledTask", "Timestamp", "User", "UserEnrolment",
]
