"""Confirming an "Enrol me": the user's input loaded by the method's ``enrol_me_schema``, the
method's attempt limit, the method's :meth:`~enrolkit.EnrolMethod.confirm_enrolment` in one
transaction, and a refusal logged in a transaction of its own (the refused one is rolled back,
and a wrong enrolment key must still leave a trace)."""

from __future__ import annotations

import inspect
import warnings

from . import throttle
from .enrolments import is_enrolled
from .errors import Refused, SettingsError
from .locks import lock_instances, retrying
from .log import record
from .methods import EnrolMethod
from .models import EnrolInstance, User
from .site import Site

#: The event of a refused "Enrol me" (its reason is the refusal's message, never the input).
REFUSED = "enrol_me_refused"


class TooManyAttempts(Refused):
    """The user made the method's allowed number of "Enrol me" attempts on an instance; the
    API answers 429 with ``Retry-After``."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def load(site: Site, method: EnrolMethod, instance: EnrolInstance, data: dict) -> dict:
    """``data`` loaded by the method's enrol-me schema for ``instance`` (unknown keys
    refused)."""
    from marshmallow import ValidationError

    where = f"enrolment input of {method.display_name(instance)}"
    schema = method.enrol_me_schema_for(site, instance)
    if schema is None:
        if data:
            raise SettingsError({key: ["unknown field"] for key in data}, where=where)
        return {}
    try:
        return schema().load(data)
    except ValidationError as exc:
        raise SettingsError(exc.messages, where=where) from None


def takes_data(method: EnrolMethod) -> bool:
    """Whether the method's ``confirm_enrolment`` takes ``data`` (enrolkit 0.2 on) or is an
    0.1 override of ``(site, instance, user)``."""
    parameters = inspect.signature(method.confirm_enrolment).parameters.values()
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return True
    return (
        len([p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]) >= 4
    )


def confirm(site: Site, instance: EnrolInstance, user: User, data: dict) -> None:
    """Load ``data``, count the attempt, and let the method enrol ``user`` or refuse."""
    method = site.plugins.method(instance.method)
    key = f"enrol_me:{instance.id}:{user.id}"
    if method.enrol_me_attempts:
        wait = throttle.take(
            site, key, limit=method.enrol_me_attempts, window=method.enrol_me_window
        )
        if wait:
            minutes = max(1, -(-wait // 60))
            raise TooManyAttempts(
                f"too many attempts to enrol in this course; try again in {minutes} minute(s)",
                retry_after=wait,
            )
    loaded = load(site, method, instance, data)
    try:
        retrying(site, lambda: _confirm(site, method, instance, user, loaded))
    except Refused as refused:
        with site.atomic():
            record(
                site,
                REFUSED,
                method.component,
                course_id=instance.course_id,
                user_id=user.id,
                instance_id=instance.id,
                reason=str(refused),
            )
        raise
    if method.enrol_me_attempts:
        throttle.forget(site, key, window=method.enrol_me_window)


def fields_of(site: Site, instance_id: int | None) -> list[dict]:
    """What an offer's "Enrol me" asks: one ``{name, label, help, required, secret}`` per field
    of the method's ``enrol_me_schema`` (the course page's form, the CLI's and API's listing)."""
    from .fields import SecretInput

    instance = site.session.get(EnrolInstance, instance_id) if instance_id else None
    method = site.plugins.methods.get(instance.method) if instance else None
    schema_class = method.enrol_me_schema_for(site, instance) if method else None
    if schema_class is None:
        return []
    schema = schema_class()
    return [
        {
            "name": name,
            "label": field.metadata.get("label") or name.replace("_", " ").capitalize(),
            "help": field.metadata.get("help", ""),
            "required": field.required,
            "secret": isinstance(field, SecretInput),
        }
        for name, field in schema.fields.items()
        if not field.dump_only
    ]


def _confirm(site: Site, method: EnrolMethod, instance: EnrolInstance, user: User, loaded) -> None:
    """The method's checks and enrolment, as the instance's only writer: the same "Enrol me"
    sent twice at once (a double click, two nodes) finds the first one's enrolment and is done,
    and two people never take the last place together."""
    with site.atomic():
        lock_instances(site.session, [instance.id])
        if is_enrolled(site, user.id, instance.course_id):
            return
        if takes_data(method):
            method.confirm_enrolment(site, instance, user, loaded)
        else:
            warnings.warn(
                f"{type(method).__name__}.confirm_enrolment(site, instance, user) is "
                "deprecated: add a fourth argument, data (the user's input); the old form "
                "stops working in enrolkit 0.3",
                DeprecationWarning,
                stacklevel=2,
            )
            method.confirm_enrolment(site, instance, user)
