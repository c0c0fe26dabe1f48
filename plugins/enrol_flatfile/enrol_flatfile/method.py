"""The flat-file method and its site settings.

The method has one instance per course, created when a file first names the course; people do
not add instances by hand. Everything else is site-wide: where files are dropped, how they are
encoded, what a ``del`` line does, what role names files may use.
"""

from __future__ import annotations

import codecs
import os
from dataclasses import dataclass
from pathlib import Path

from enrolkit import db
from enrolkit.errors import SettingsError
from enrolkit.methods import REMOVAL_ACTIONS, SUSPEND_NOROLES, EnrolMethod
from enrolkit.models import Role
from enrolkit.site import Site
from enrolkit.texts import Text
from marshmallow import Schema, ValidationError, fields, pre_load, validate
from sqlalchemy import select

from . import COMPONENT, NAME  # noqa: F401  (COMPONENT re-exported for the plugin's modules)

REMOVAL_HELP = (
    "What a del line does to the enrolment once it has removed the line's role: unenrol, "
    "suspend, suspend and remove the instance's other roles (suspend_noroles), or keep."
)


#: Instance configuration (the environment, like every ``ENROLKIT_*`` setting): folders, separated
#: by ``os.pathsep``, under which the operator allows the drop folder besides ``$ENROLKIT_HOME``.
ROOTS_VARIABLE = "ENROLKIT_FLATFILE_ROOTS"
#: The drop folder when the ``folder`` setting is empty, relative to ``$ENROLKIT_HOME``.
DEFAULT_FOLDER = "flatfile"


def allowed_roots() -> list[Path]:
    """``$ENROLKIT_HOME`` and the roots the operator listed in ``ENROLKIT_FLATFILE_ROOTS``."""
    listed = os.environ.get(ROOTS_VARIABLE, "").split(os.pathsep)
    return [db.home(), *(Path(root).expanduser().resolve() for root in listed if root.strip())]


def resolve_folder(value: str) -> Path:
    """The drop folder a ``folder`` setting names, links resolved, checked against the rules.

    Empty means ``$ENROLKIT_HOME/flatfile``; a relative path is relative to ``$ENROLKIT_HOME``.
    The folder must be inside the home or under a listed root, and may never be the home itself
    or a folder holding it or the SQLite database: every file directly in the drop folder is read
    line by line into reports, so ``secret_key`` must not be one of them. Raises
    ``ValidationError`` naming the rule.
    """
    home = db.home()
    text = value.strip() or DEFAULT_FOLDER
    folder = (home / Path(text).expanduser()).resolve()
    secrets = [home]
    url = db.database_url()
    if url.startswith("sqlite:///") and url.removeprefix("sqlite:///") not in ("", ":memory:"):
        secrets.append(Path(url.removeprefix("sqlite:///")).resolve().parent)
    for kept in secrets:
        if kept.is_relative_to(folder):
            raise ValidationError(
                f"{folder} holds the site's secret key or database ({kept}); "
                f"the drop folder must be a folder of its own, e.g. {home / DEFAULT_FOLDER}"
            )
    if not any(folder.is_relative_to(root) for root in allowed_roots()):
        raise ValidationError(
            f"{folder} is outside the allowed roots; the drop folder must be inside "
            f"$ENROLKIT_HOME ({home}) or under a folder listed in {ROOTS_VARIABLE}, which the "
            f"operator sets in the instance's environment"
        )
    return folder


def _check_folder(value: str) -> None:
    resolve_folder(value)


def check_encoding(value: str) -> None:
    """Lines are split on the newline byte, so the encoding must write ASCII as ASCII."""
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValidationError(f"unknown encoding {value!r}; e.g. utf-8, iso-8859-2") from None
    sample = "operation,;\n".encode(value, errors="replace").removeprefix(codecs.BOM_UTF8)
    if sample != b"operation,;\n":
        raise ValidationError(
            f"{value!r} does not write ASCII as ASCII (like UTF-16); use utf-8 or an 8-bit encoding"
        )


def parse_role_map(text: str) -> dict[str, str]:
    """``"teacher=ucitel, manager="`` -> ``{"teacher": "ucitel", "manager": ""}``.

    Entries are separated by commas or new lines. Shortnames and aliases are lowercased; an
    empty alias means files may not use the role at all.
    """
    found: dict[str, str] = {}
    for entry in text.replace("\n", ",").split(","):
        if not entry.strip():
            continue
        shortname, sep, alias = entry.partition("=")
        shortname, alias = shortname.strip().lower(), alias.strip().lower()
        if not sep or not shortname:
            raise ValidationError(f"{entry.strip()!r}: write shortname=alias, e.g. teacher=ucitel")
        if shortname in found:
            raise ValidationError(f"role {shortname!r} is mapped twice")
        found[shortname] = alias
    return found


def _check_role_map(value: str) -> None:
    aliases = [alias for alias in parse_role_map(value).values() if alias]
    twice = sorted({alias for alias in aliases if aliases.count(alias) > 1})
    if twice:
        raise ValidationError(f"alias(es) given to several roles: {', '.join(twice)}")


def _action_field(default: str, label: str, help_text: str) -> fields.String:
    return fields.String(
        load_default=default,
        validate=validate.OneOf(REMOVAL_ACTIONS),
        metadata={"label": label, "help": help_text, "choices": REMOVAL_ACTIONS},
    )


class FlatfileSiteSettings(Schema):
    folder = fields.String(
        load_default="",
        validate=_check_folder,
        metadata={
            "label": "Drop folder",
            "help": "Folder whose files are applied, in name order. Empty: $ENROLKIT_HOME/flatfile. "
            "It must be inside $ENROLKIT_HOME or under a folder listed in ENROLKIT_FLATFILE_ROOTS.",
        },
    )
    encoding = fields.String(
        load_default="utf-8",
        validate=check_encoding,
        metadata={
            "label": "File encoding",
            "help": "Encoding of the files, e.g. utf-8 (a byte-order mark is allowed) or "
            "iso-8859-2.",
        },
    )
    mail_admins = fields.Boolean(
        load_default=True,
        metadata={
            "label": "Mail the admins a report",
            "help": "When a file has rejected lines, mail every site admin the counts and errors.",
        },
    )
    mail_students = fields.Boolean(
        load_default=False,
        metadata={
            "label": "Mail the enrolled users",
            "help": "Send each user a file newly enrols a welcome message (Moodle's mailstudents).",
        },
    )
    mail_teachers = fields.Boolean(
        load_default=False,
        metadata={
            "label": "Mail the course's teacher",
            "help": "Tell the course's first editing teacher (or a site admin) about each new "
            "enrolment (Moodle's mailteachers).",
        },
    )
    removal = _action_field(SUSPEND_NOROLES, "Removal action for del lines", REMOVAL_HELP)
    role_map = fields.String(
        load_default="",
        validate=_check_role_map,
        metadata={
            "label": "Role aliases",
            "help": "How files name roles, as shortname=alias, one per line or comma-separated. "
            "A role not listed is named by its shortname; shortname= (no alias) refuses it.",
            "widget": "textarea",
        },
    )
    expiry_action = _action_field(
        SUSPEND_NOROLES,
        "When an enrolment ends",
        "What happens to a flat-file enrolment once its end date has passed.",
    )
    chunk_size = fields.Integer(
        load_default=20_000,
        validate=validate.Range(min=1, max=100_000),
        metadata={
            "label": "Lines per transaction",
            "help": "Lines read, and applied, per database transaction. Memory grows with it.",
        },
    )

    @pre_load
    def _moodle_names(self, data, **kwargs):
        """Moodle's names of the three mail settings are accepted too."""
        renamed = {"mailstudents": "mail_students", "mailteachers": "mail_teachers"}
        renamed["mailadmins"] = "mail_admins"
        return {renamed.get(key, key): value for key, value in data.items()}


class FlatfileInstanceSettings(Schema):
    pass


class FlatfileMethod(EnrolMethod):
    name = NAME
    title = Text("Flat file")
    site_schema = FlatfileSiteSettings
    instance_schema = FlatfileInstanceSettings
    enabled_by_default = False
    multiple_instances = False
    manual_instances = False
    default_removal = SUSPEND_NOROLES

    def default_role(self, site: Site) -> str | None:
        """None: every line of a file names its role."""
        return None

    def site_enabled(self, site: Site) -> None:
        """Make the drop folder, readable by this account only (0700), so that files can be
        dropped as soon as the method is on. A folder that exists is left as it is."""
        folder = load_settings(site).folder
        if folder.is_dir():
            return
        try:
            folder.mkdir(parents=True)
            folder.chmod(0o700)
        except OSError as exc:
            raise SettingsError(
                {
                    "folder": [
                        f"cannot create the drop folder {folder}: {exc.strerror}; choose another "
                        "with: enrolkit method set flatfile folder=PATH"
                    ]
                },
                where="site settings of flatfile",
            ) from None


@dataclass(frozen=True)
class Settings:
    """The site settings a run works with, read once at its start."""

    folder: Path
    encoding: str
    mail_admins: bool
    removal: str
    chunk_size: int
    #: Alias as written in files (lowercase) -> role id.
    roles: dict[str, int]


def load_settings(site: Site) -> Settings:
    values = site.method_settings(NAME)
    try:
        folder = resolve_folder(values["folder"])
    except ValidationError as exc:  # the folder moved (a link) since the settings were read
        raise SettingsError({"folder": exc.messages}, where=f"site settings of {NAME}") from None
    return Settings(
        folder=folder,
        encoding=values["encoding"],
        mail_admins=values["mail_admins"],
        removal=values["removal"],
        chunk_size=values["chunk_size"],
        roles=role_aliases(site, values["role_map"]),
    )


def role_aliases(site: Site, role_map: str) -> dict[str, int]:
    """Every role under its alias: its shortname unless ``role_map`` gives another or none."""
    mapping = parse_role_map(role_map)
    roles = dict(
        site.session.execute(select(Role.shortname, Role.id).order_by(Role.sortorder)).all()
    )
    unknown = sorted(set(mapping) - set(roles))
    if unknown:
        raise SettingsError(
            {"role_map": [f"no role {', '.join(map(repr, unknown))} on this site"]},
            where=f"site settings of {NAME}",
        )
    aliases: dict[str, int] = {}
    owners: dict[str, str] = {}
    for shortname, role_id in roles.items():
        alias = mapping.get(shortname, shortname.lower())
        if not alias:
            continue
        if alias in aliases:
            raise SettingsError(
                {"role_map": [f"alias {alias!r} names both {owners[alias]} and {shortname}"]},
                where=f"site settings of {NAME}",
            )
        aliases[alias], owners[alias] = role_id, shortname
    return aliases
