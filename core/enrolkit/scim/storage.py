"""The SCIM storage of scim2-server over enrolkit's users and cohorts.

scim2-server does the protocol: routing, validation, discovery, PATCH and PUT applied to the
stored resource, conditional requests, the error format. This storage reads and writes through
enrolkit's own services, so a SCIM change is an ordinary enrolkit change: a cohort's members
change through :mod:`enrolkit.cohorts` (firing ``cohort_members_changed``), a profile through
:func:`enrolkit.people.set_fields` (firing ``profile_changed``), each logged with origin ``scim``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import secrets
import threading
from collections.abc import Sequence
from typing import Any, Union

from scim2_models import (
    Email,
    EnterpriseUser,
    Extension,
    Group,
    GroupMember,
    Meta,
    Name,
    NotFoundException,
    NotImplementedException,
    Resource,
    ResourceType,
    SearchRequest,
    UniquenessException,
    User,
)
from scim2_models.urn import URN
from scim2_server.storage import ScimStorage, SearchPage
from sqlalchemy import ColumnElement, exists, func, literal, select

from .. import clock, cohorts
from ..errors import EnrolkitError
from ..log import record
from ..models import Cohort, CohortMember, ProfileData, ProfileField
from ..models import User as UserRow
from ..people import PROFILE_PREFIX, delete_user, profile_values, set_fields
from ..site import Site
from .filters import Columns, compare, compile_filter, constant

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:user"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:user"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:group"
ScimUser = User[EnterpriseUser]
#: The enrolkit extension: one attribute per custom profile field, named by its shortname.
PROFILE = "urn:enrolkit:params:scim:schemas:extension:profile:2.0:User"


def profile_extension(shortnames: Sequence[str]) -> type[Extension] | None:
    """An extension model with a string attribute per custom profile field (None without any
    field). Shortnames that are no Python identifier cannot be attributes and are left out."""
    names = sorted(n for n in shortnames if n.isidentifier() and not n.startswith("_"))
    if not names:
        return None
    namespace: dict[str, Any] = {"__module__": __name__, "__schema__": URN(PROFILE)}
    namespace["__annotations__"] = {name: "str | None" for name in names}
    namespace.update(dict.fromkeys(names))
    return type("EnrolkitProfile", (Extension,), namespace)


def user_model(profile: type[Extension] | None) -> type[Resource]:
    return User[Union[EnterpriseUser, profile]] if profile else ScimUser  # noqa: UP007


def _user_columns() -> Columns:
    display = UserRow.firstname + literal(" ") + UserRow.lastname
    columns: Columns = {
        "id": UserRow.id,
        "username": UserRow.username,
        "externalid": UserRow.idnumber,
        "displayname": display,
        "name.givenname": UserRow.firstname,
        "name.familyname": UserRow.lastname,
        "name.formatted": display,
        "emails.value": UserRow.email,
        "emails.type": constant("work"),
        "emails.primary": constant("true"),
        "active": lambda op, value: _active(op, value),
        f"{ENTERPRISE}:department": UserRow.department,
        f"{ENTERPRISE}:organization": UserRow.institution,
    }
    for name in list(columns):  # the core schema's URN may prefix any core attribute
        if not name.startswith("urn:"):
            columns[f"{CORE_USER}:{name}"] = columns[name]
    return columns


def _active(op: str, value: Any) -> ColumnElement:
    if op == "pr":
        return literal(True) == literal(True)
    wanted = bool(value) if op == "eq" else not bool(value)
    return UserRow.suspended.is_(not wanted)


def _profile_clause(shortname: str):
    """A filter on a custom profile field: a matching value row exists for the user."""

    def clause(op: str, value: Any) -> ColumnElement:
        field = select(ProfileField.id).where(ProfileField.shortname == shortname)
        found = exists().where(
            ProfileData.user_id == UserRow.id, ProfileData.field_id == field.scalar_subquery()
        )
        if op == "pr":
            return found.where(ProfileData.value != "")
        return found.where(compare(ProfileData.value, op, value))

    return clause


def _group_columns() -> Columns:
    member = exists().where(CohortMember.cohort_id == Cohort.id)

    def members(op: str, value: Any) -> ColumnElement:
        if op == "pr":
            return member
        if op != "eq":
            return literal(False) == literal(True)
        try:
            user_id = int(value)
        except (TypeError, ValueError):
            return literal(False) == literal(True)
        return member.where(CohortMember.user_id == user_id)

    columns: Columns = {
        "id": Cohort.id,
        "displayname": Cohort.name,
        "externalid": Cohort.idnumber,
        "members.value": members,
    }
    for name in list(columns):
        columns[f"{CORE_GROUP}:{name}"] = columns[name]
    return columns


USER_COLUMNS = _user_columns()
GROUP_COLUMNS = _group_columns()
USER_SORT = {"username": UserRow.username, "externalid": UserRow.idnumber, "id": UserRow.id}
GROUP_SORT = {"displayname": Cohort.name, "externalid": Cohort.idnumber, "id": Cohort.id}


def _time(seconds: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds or 0, datetime.UTC)


def _version(values: Any) -> str:
    digest = hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()
    return f'W/"{digest[:20]}"'


def _id(resource_id: str) -> int:
    try:
        number = int(resource_id)
    except (TypeError, ValueError):
        raise NotFoundException(detail=f"no resource {resource_id}") from None
    if not 0 < number < 2**31:
        raise NotFoundException(detail=f"no resource {resource_id}")
    return number


class EnrolkitStorage(ScimStorage):
    """Users are enrolkit users (deleted ones are gone); Groups are cohorts."""

    def __init__(self, profile: type[Extension] | None = None) -> None:
        self._local = threading.local()
        self.describe(profile)

    def describe(self, profile: type[Extension] | None) -> None:
        """Serve users with this enrolkit extension (None: no custom profile field)."""
        self.profile = profile
        self.user_model = user_model(profile)

    @property
    def site(self) -> Site:
        return self._local.site

    def bind(self, site: Site | None) -> None:
        """The site of the request this thread serves (set by the application)."""
        self._local.site = site

    # --- reading --------------------------------------------------------------------------

    def get(self, resource_type: ResourceType, resource_id: str, *, response_parameters=None):
        if resource_type.name == "User":
            return self._user(self._user_row(_id(resource_id)))
        return self._group(self._cohort(_id(resource_id)))

    def _user_row(self, user_id: int) -> UserRow:
        user = self.site.session.get(UserRow, user_id)
        if user is None or user.deleted:
            raise NotFoundException(detail=f"no user {user_id}")
        return user

    def _cohort(self, cohort_id: int) -> Cohort:
        cohort = self.site.session.get(Cohort, cohort_id)
        if cohort is None:
            raise NotFoundException(detail=f"no group {cohort_id}")
        return cohort

    def search(
        self, resource_types: list[ResourceType], search_request: SearchRequest, *, position=None
    ):
        if len(resource_types) != 1:
            raise NotImplementedException(detail="search /Users or /Groups, not the root")
        is_user = resource_types[0].name == "User"
        model = UserRow if is_user else Cohort
        query = select(model)
        if is_user:
            query = query.where(UserRow.deleted.is_(False))
        if search_request.filter is not None:
            columns = self._user_columns() if is_user else GROUP_COLUMNS
            query = query.where(compile_filter(search_request.filter.ast, columns))
        session = self.site.session
        total = session.scalar(select(func.count()).select_from(query.subquery()))
        sort_columns = USER_SORT if is_user else GROUP_SORT
        order = model.id
        if search_request.sort_by is not None:
            key = str(search_request.sort_by).lower().rsplit(":", 1)[-1]
            order = sort_columns.get(key, model.id)
        descending = str(search_request.sort_order or "").endswith("descending")
        query = query.order_by(order.desc() if descending else order, model.id)
        start = max(search_request.start_index or 1, 1)
        count = search_request.count
        query = query.offset(start - 1)
        if count is not None:
            query = query.limit(count)
        rows = session.scalars(query).all() if count != 0 else []
        make = self._user if is_user else self._group
        return SearchPage(total=total, resources=[make(row) for row in rows])

    def _user_columns(self) -> Columns:
        """The core columns, and one per attribute of the enrolkit extension."""
        fields = self.profile.model_fields if self.profile is not None else {}
        return USER_COLUMNS | {
            f"{PROFILE.lower()}:{name.lower()}": _profile_clause(name)
            for name in fields
            if name != "schemas"
        }

    def _user(self, user: UserRow) -> ScimUser:
        values = {
            "username": user.username,
            "idnumber": user.idnumber,
            "first": user.firstname,
            "last": user.lastname,
            "email": user.email,
            "suspended": user.suspended,
            "department": user.department,
            "institution": user.institution,
        }
        resource = self.user_model(
            id=str(user.id),
            user_name=user.username,
            external_id=user.idnumber or None,
            name=Name(given_name=user.firstname or None, family_name=user.lastname or None),
            display_name=f"{user.firstname} {user.lastname}".strip() or None,
            emails=[Email(value=user.email, primary=True, type="work")] if user.email else None,
            active=not user.suspended,
            meta=Meta(
                resource_type="User",
                created=_time(user.timecreated),
                last_modified=_time(user.timemodified or user.timecreated),
                version=_version(values),
            ),
        )
        if user.department or user.institution:
            resource[EnterpriseUser] = EnterpriseUser(
                department=user.department or None, organization=user.institution or None
            )
        if self.profile is not None:
            values = {
                name: value
                for name, value in profile_values(self.site, user.id).items()
                if name in self.profile.model_fields and value
            }
            if values:
                resource[self.profile] = self.profile(**values)
        return resource

    def _group(self, cohort: Cohort) -> Group:
        members = self.site.session.execute(
            select(UserRow.id, UserRow.username)
            .join(CohortMember, CohortMember.user_id == UserRow.id)
            .where(CohortMember.cohort_id == cohort.id)
            .order_by(UserRow.id)
        ).all()
        return Group(
            id=str(cohort.id),
            display_name=cohort.name,
            external_id=cohort.idnumber,
            members=[
                GroupMember(value=str(uid), ref=f"Users/{uid}", display=name, type="User")
                for uid, name in members
            ]
            or None,
            meta=Meta(
                resource_type="Group",
                created=_time(cohort.timecreated),
                last_modified=_time(cohort.timecreated),
                version=_version([cohort.name, cohort.idnumber, [m[0] for m in members]]),
            ),
        )

    # --- writing --------------------------------------------------------------------------

    def create(self, resource_type: ResourceType, resource: Resource):
        if resource_type.name == "User":
            return self._create_user(resource)
        return self._create_group(resource)

    def update(self, resource_type: ResourceType, resource: Resource, *, expected_version=None):
        if resource_type.name == "User":
            user = self._user_row(_id(resource.id))
            self._check_version(self._user(user), expected_version)
            self._write_user(user, resource)
            return self._user(user)
        cohort = self._cohort(_id(resource.id))
        self._check_version(self._group(cohort), expected_version)
        self._write_group(cohort, resource)
        return self._group(cohort)

    def delete(self, resource_type: ResourceType, resource_id: str, *, expected_version=None):
        if resource_type.name == "User":
            user = self._user_row(_id(resource_id))
            self._check_version(self._user(user), expected_version)
            self._delete_user(user)
            return
        cohort = self._cohort(_id(resource_id))
        self._check_version(self._group(cohort), expected_version)
        cohorts.delete_cohort(self.site, cohort)

    @staticmethod
    def _check_version(current: Resource, expected: str | None) -> None:
        from scim2_models import PreconditionFailedException

        if expected is not None and current.meta.version != expected:
            raise PreconditionFailedException(detail="the resource changed since it was read")

    def _user_values(self, resource: ScimUser) -> dict[str, str]:
        emails = resource.emails or []
        primary = next((e for e in emails if e.primary), emails[0] if emails else None)
        enterprise = resource[EnterpriseUser]
        name = resource.name or Name()
        profile = resource[self.profile] if self.profile is not None else None
        fields = {
            f"{PROFILE_PREFIX}{field}": (getattr(profile, field, None) if profile else None) or ""
            for field in (self.profile.model_fields if self.profile is not None else ())
            if field != "schemas"
        }
        return fields | {
            "idnumber": resource.external_id or "",
            "firstname": name.given_name or "",
            "lastname": name.family_name or "",
            "email": str(primary.value) if primary and primary.value else "",
            "suspended": "0" if resource.active is not False else "1",
            "department": (enterprise.department if enterprise else None) or "",
            "institution": (enterprise.organization if enterprise else None) or "",
        }

    def _taken(self, username: str, but: int | None = None) -> None:
        query = select(UserRow.id).where(func.lower(UserRow.username) == username.lower())
        if but is not None:
            query = query.where(UserRow.id != but)
        if self.site.session.scalar(query) is not None:
            raise UniquenessException(detail=f"userName {username!r} is taken")

    def _create_user(self, resource: ScimUser) -> ScimUser:
        username = resource.user_name.strip()
        site = self.site
        with site.atomic():
            self._taken(username)
            now = clock.now()
            user = UserRow(username=username, auth="scim", timecreated=now, timemodified=now)
            site.session.add(user)
            site.session.flush()
            record(site, "user_created", "core", user_id=user.id, reason=username)
            self._write_user(user, resource)
        return self._user(user)

    def _write_user(self, user: UserRow, resource: ScimUser) -> None:
        values = self._user_values(resource)
        site = self.site
        with site.atomic():
            username = resource.user_name.strip()
            if username != user.username:
                self._taken(username, user.id)
                record(
                    site,
                    "user_renamed",
                    "core",
                    user_id=user.id,
                    reason=f"{user.username} -> {username}",
                )
                user.username = username
            try:
                set_fields(site, user, values)
            except EnrolkitError as exc:
                from scim2_models import InvalidValueException

                raise InvalidValueException(detail=str(exc)) from None

    def _delete_user(self, user: UserRow) -> None:
        """Moodle's delete (:func:`enrolkit.people.delete_user`)."""
        delete_user(self.site, user)

    def _create_group(self, resource: Group) -> Group:
        site = self.site
        idnumber = (resource.external_id or "").strip() or f"scim_{secrets.token_hex(8)}"
        with site.atomic():
            if site.session.scalar(select(Cohort.id).where(Cohort.idnumber == idnumber)):
                raise UniquenessException(detail=f"a group with externalId {idnumber!r} exists")
            now = clock.now()
            cohort = Cohort(idnumber=idnumber, name=resource.display_name, timecreated=now)
            site.session.add(cohort)
            site.session.flush()
            record(site, "cohort_created", "core", reason=idnumber)
            self._write_group(cohort, resource)
        return self._group(cohort)

    def _write_group(self, cohort: Cohort, resource: Group) -> None:
        site = self.site
        with site.atomic():
            idnumber = (resource.external_id or "").strip() or cohort.idnumber
            if idnumber != cohort.idnumber:
                if site.session.scalar(select(Cohort.id).where(Cohort.idnumber == idnumber)):
                    raise UniquenessException(detail=f"a group with externalId {idnumber!r} exists")
                cohort.idnumber = idnumber
            if resource.display_name and resource.display_name != cohort.name:
                cohort.name = resource.display_name
            wanted = set()
            for member in resource.members or []:
                try:
                    wanted.add(int(member.value))
                except (TypeError, ValueError):
                    from scim2_models import InvalidValueException

                    raise InvalidValueException(
                        detail=f"member {member.value!r} is no user id"
                    ) from None
            present = set(
                site.session.scalars(
                    select(CohortMember.user_id).where(CohortMember.cohort_id == cohort.id)
                )
            )
            added = self._users(wanted - present)
            if added:
                cohorts.add_members(site, cohort, added)
            removed = self._users(present - wanted, deleted=True)
            if removed:
                cohorts.remove_members(site, cohort, removed)

    def _users(self, ids: set[int], deleted: bool = False) -> list[UserRow]:
        if not ids:
            return []
        query = select(UserRow).where(UserRow.id.in_(sorted(ids)))
        if not deleted:
            query = query.where(UserRow.deleted.is_(False))
        found = self.site.session.scalars(query).all()
        missing = ids - {u.id for u in found}
        if missing:
            from scim2_models import InvalidValueException

            raise InvalidValueException(detail=f"no user with id {min(missing)}")
        return list(found)


__all__ = ["EnrolkitStorage", "ScimUser"]
