"""Users and their profiles: CSV import, profile changes, logins, passwords."""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from sqlalchemy import select

from . import clock, csvfile, db, lengths
from .catalog import ImportRefused
from .changes import ProfileChange
from .csvfile import RowError
from .errors import EnrolkitError
from .locks import retrying
from .models import STANDARD_FIELDS, ProfileData, ProfileField, User
from .site import Site

USER_REQUIRED = ("username", "email", "firstname", "lastname")
USER_OPTIONAL = (
    "idnumber",
    "auth",
    "lang",
    "department",
    "institution",
    "city",
    "country",
    "suspended",
    "timezone",
)
PROFILE_PREFIX = "profile_field_"
#: Besides the standard fields: whether the account is suspended, and the user's own time zone
#: ('' for the site's). Neither is a field rules or group names read.
EDITABLE = tuple(f for f in STANDARD_FIELDS if f != "username") + ("suspended", "timezone")


def check_field(field: str, value: str) -> str | bool:
    """A standard field's value as stored, or :class:`EnrolkitError` naming the column. Every
    entrance uses it: CSV import, ``user set``, the web profile form and the API."""
    if field == "suspended":
        lowered = value.lower()
        if lowered in ("1", "yes", "true", "on"):
            return True
        if lowered in ("0", "no", "false", "off", ""):
            return False
        raise EnrolkitError(f"column suspended: {lengths.shown(value)} is not 0/1")
    if field == "timezone" and value and value not in clock.zones():
        raise EnrolkitError(
            f"column timezone: {lengths.shown(value)} is not a time zone; give an IANA name such "
            "as Europe/Paris or America/Montreal, or nothing for the site's"
        )
    lengths.check_values(User, {field: value})
    if field == "email" and value and ("\r" in value or "\n" in value):
        raise EnrolkitError("column email: contains a line break; give one address on one line")
    if field == "email" and value and "@" not in value:
        raise EnrolkitError(f"column email: {lengths.shown(value)} is not an email address")
    if field == "country" and value and len(value) != 2:
        raise EnrolkitError(
            f"column country: {lengths.shown(value)} is not a two-letter country code"
        )
    return value


def _check_shortname(shortname: str) -> None:
    lengths.check(
        ProfileField.shortname, shortname, f"column {PROFILE_PREFIX}…: the field's shortname"
    )


def profile_field(site: Site, shortname: str, *, create: bool = False) -> ProfileField | None:
    found = site.session.scalar(select(ProfileField).where(ProfileField.shortname == shortname))
    if found is None and create:
        found = ProfileField(shortname=shortname, name=shortname)
        site.session.add(found)
        site.session.flush()
    return found


def _apply(site: Site, user: User, values: dict, profile: dict[str, str]) -> list[str]:
    """Set standard fields and custom profile fields; return the names that changed."""
    changed = []
    for field, value in values.items():
        if getattr(user, field) != value:
            setattr(user, field, value)
            changed.append(field)
            if field == "suspended" and value:
                end_sessions(user)
    for shortname, value in profile.items():
        field = profile_field(site, shortname, create=True)
        row = site.session.get(ProfileData, (user.id, field.id))
        if row is None:
            if value:
                site.session.add(ProfileData(user_id=user.id, field_id=field.id, value=value))
                changed.append(PROFILE_PREFIX + shortname)
        elif row.value != value:
            row.value = value
            changed.append(PROFILE_PREFIX + shortname)
    if changed:
        user.timemodified = clock.now()
    return changed


def import_users(
    site: Site, path: str | Path, *, strict: bool = False
) -> tuple[int, int, list[RowError]]:
    """Create or update users from CSV; returns (created, updated, errors). Fires
    ``profile_changed`` once for every user whose profile changed."""
    db.check_intact(site.session.get_bind().engine)  # never write into a damaged file
    created = updated = 0
    errors: list[RowError] = []
    changed_users: list[int] = []
    changed_fields: set[str] = set()
    name = Path(path).name
    with site.atomic():
        for item in csvfile.read(
            path, required=USER_REQUIRED, optional=USER_OPTIONAL, prefixes=(PROFILE_PREFIX,)
        ):
            if isinstance(item, RowError):
                errors.append(item)
                continue
            line, row = item
            try:
                if not row["username"]:
                    raise EnrolkitError("column username: empty")
                lengths.check_values(User, {"username": row["username"]})
                values = {
                    f: check_field(f, v)
                    for f, v in row.items()
                    if f != "username" and not f.startswith(PROFILE_PREFIX)
                }
                for f in row:
                    if f.startswith(PROFILE_PREFIX):
                        _check_shortname(f.removeprefix(PROFILE_PREFIX))
            except EnrolkitError as exc:
                errors.append(RowError(name, line, str(exc)))
                continue
            profile = {
                f.removeprefix(PROFILE_PREFIX): v
                for f, v in row.items()
                if f.startswith(PROFILE_PREFIX)
            }
            user = site.session.scalar(select(User).where(User.username == row["username"]))
            if user is None:
                user = User(username=row["username"], timecreated=clock.now())
                site.session.add(user)
                site.session.flush()
                created += 1
                _apply(site, user, values, profile)
            else:
                fields = _apply(site, user, values, profile)
                if fields:
                    updated += 1
                    changed_users.append(user.id)
                    changed_fields.update(fields)
        if strict and errors:
            raise ImportRefused(errors)
        site.session.flush()
        if changed_users:
            site.plugins.profile_changed(
                site=site, change=ProfileChange(tuple(changed_users), tuple(sorted(changed_fields)))
            )
    return created, updated, errors


def set_fields(site: Site, user: User, assignments: dict[str, str]) -> list[str]:
    """``enrolkit user set``: change standard or ``profile_field_x`` fields, fire the hook."""
    values, profile, bad = {}, {}, {}
    for field, value in assignments.items():
        if field.startswith(PROFILE_PREFIX) and len(field) > len(PROFILE_PREFIX):
            try:
                _check_shortname(field.removeprefix(PROFILE_PREFIX))
            except EnrolkitError as exc:
                bad[field[:60]] = str(exc)
                continue
            profile[field.removeprefix(PROFILE_PREFIX)] = value
        elif field in EDITABLE:
            try:
                values[field] = check_field(field, value)
            except EnrolkitError as exc:
                bad[field] = str(exc)
        else:
            bad[field] = (
                f"unknown field; use one of {', '.join(EDITABLE)} or {PROFILE_PREFIX}<shortname>"
            )
    if bad:
        raise EnrolkitError("; ".join(f"{k}: {v}" for k, v in bad.items()))
    with site.atomic():
        changed = _apply(site, user, values, profile)
        site.session.flush()
        if changed:
            from .log import record

            record(site, "user_updated", "core", user_id=user.id, reason=", ".join(changed))
            site.plugins.profile_changed(
                site=site, change=ProfileChange((user.id,), tuple(changed))
            )
    return changed


def profile_values(site: Site, user_id: int) -> dict[str, str]:
    """The user's custom profile fields by shortname."""
    return dict(
        site.session.execute(
            select(ProfileField.shortname, ProfileData.value)
            .join(ProfileData, ProfileData.field_id == ProfileField.id)
            .where(ProfileData.user_id == user_id)
        ).all()
    )


def login(site: Site, user: User) -> None:
    """A site login: record it, then fire ``on_login``.

    The login (``lastlogin`` and its log entry) commits on its own, before the hooks' work: when
    that work fails, or its process is killed, the login is still known, and the hourly
    auto-enrol task, which enrols matching users who have logged in, catches the user up. A
    caller's enclosing transaction (``site.atomic``) holds both, as before.
    """
    from .log import record

    if user.suspended:
        raise EnrolkitError(f"{user.username} is suspended and cannot log in")
    with site.atomic():
        user.lastlogin = clock.now()
        site.session.flush()
        record(site, "user_loggedin", "core", user_id=user.id)

    def hooks() -> None:
        with site.atomic(whole=True):  # the hooks' work is all or nothing, retried as a whole
            site.plugins.on_login(site=site, user=user)

    retrying(site, hooks)


def end_sessions(user: User) -> None:
    """End every web session of ``user`` at its next request (logout, new password,
    suspension): the sessions are signed with the version this raises."""
    user.session_version = (user.session_version or 0) + 1


def set_password(user: User, password: str) -> None:
    """Store a new password (hashed) and end the user's sessions, as every entrance must."""
    user.password_hash = hash_password(password)
    end_sessions(user)


# --- passwords: salted PBKDF2-SHA256, never stored in clear --------------------------------

_ITERATIONS = 260_000


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise EnrolkitError("the password must have at least 8 characters")
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, _ITERATIONS)
    return f"pbkdf2_sha256${_ITERATIONS}${salt.hex()}${digest.hex()}"


def check_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        scheme, iterations, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256":
        return False
    candidate = hashlib.pbkdf2_hmac(
        "sha256", password.encode(), bytes.fromhex(salt), int(iterations)
    )
    return hmac.compare_digest(candidate.hex(), digest)


def create_user(site: Site, username: str, fields: dict[str, str]) -> User:
    """One new user (the web's "Add a new user"): the same checks as a CSV import's row, and
    the same profile-changed hook is not fired (a new user has no enrolment to re-check yet;
    the login and the hourly tasks see them)."""
    username = username.strip()
    if not username:
        raise EnrolkitError("username: empty; give the new user's login name")
    lengths.check_values(User, {"username": username})
    if site.session.scalar(select(User.id).where(User.username == username)) is not None:
        raise EnrolkitError(f"username: {username!r} is taken; choose another")
    values = {f: check_field(f, v) for f, v in fields.items() if not f.startswith(PROFILE_PREFIX)}
    profile = {
        f.removeprefix(PROFILE_PREFIX): v for f, v in fields.items() if f.startswith(PROFILE_PREFIX)
    }
    for shortname in profile:
        _check_shortname(shortname)
    with site.atomic():
        user = User(username=username, timecreated=clock.now())
        site.session.add(user)
        site.session.flush()
        _apply(site, user, values, profile)
        from .log import record

        record(site, "user_created", "core", user_id=user.id, reason=username)
    return user


def delete_user(site: Site, user: User) -> None:
    """Moodle's delete: the user leaves every cohort and every enrolment, and is marked deleted
    (the row stays, so the log keeps its name). Used by the web admin and SCIM."""
    from . import cohorts
    from .batches import apply_all
    from .engine import Change, Plan
    from .log import record
    from .models import Cohort, CohortMember, EnrolInstance, UserEnrolment

    with site.atomic():
        for cohort in site.session.scalars(
            select(Cohort).join(CohortMember).where(CohortMember.user_id == user.id)
        ).all():
            cohorts.remove_members(site, cohort, [user])
        instance_ids = site.session.scalars(
            select(EnrolInstance.id)
            .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
            .where(UserEnrolment.user_id == user.id)
        ).all()
        apply_all(
            site,
            (
                Plan(instance_id, reason="user deleted", changes=[Change(user.id, "unenrol")])
                for instance_id in instance_ids
            ),
        )
        set_fields(site, user, {"suspended": "1"})
        user.deleted = True
        user.timemodified = clock.now()
        record(site, "user_deleted", "core", user_id=user.id, reason=user.username)
