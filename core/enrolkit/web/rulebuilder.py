"""What the rule builder's script needs: the site's condition types and the values to offer.

Condition types come from the registry (``site.plugins.conditions``). The built-in ones get
fitting inputs (a field and operator for ``profile``, a date for ``date``, a name with suggestions
for the others); a type the builder does not know is edited as the JSON of its node, so a
plugin's new condition works in the builder without a change here.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from ..models import STANDARD_FIELDS, Badge, Cohort, Course, ProfileField
from ..rules import RuleError, parse
from ..rules.standard import PROFILE_OPS
from ..site import Site

#: Most suggestions offered per list (names are still typed freely).
SUGGESTIONS = 500

#: Built-in types whose node is one key holding a name: type -> (key, suggestion list).
NAMED = {
    "badge": ("id", "badges"),
    "completion": ("course", "courses"),
    "cohort": ("id", "cohorts"),
    "language": ("id", "languages"),
    "auth": ("id", "auths"),
}


def builder_data(site: Site) -> dict:
    types = []
    for name in sorted(site.plugins.conditions):
        if name == "profile":
            types.append({"type": name, "editor": "profile"})
        elif name == "date":
            types.append({"type": name, "editor": "date"})
        elif name in NAMED:
            key, values = NAMED[name]
            types.append({"type": name, "editor": "named", "key": key, "values": values})
        else:
            types.append({"type": name, "editor": "json"})
    session = site.session
    return {
        "types": types,
        "standard_fields": list(STANDARD_FIELDS),
        "custom_fields": list(
            session.scalars(
                select(ProfileField.shortname).order_by(ProfileField.shortname).limit(SUGGESTIONS)
            )
        ),
        "profile_ops": list(PROFILE_OPS),
        "values": {
            "badges": list(session.scalars(select(Badge.name).order_by(Badge.name).limit(500))),
            "courses": list(
                session.scalars(select(Course.shortname).order_by(Course.shortname).limit(500))
            ),
            "cohorts": list(
                session.scalars(select(Cohort.idnumber).order_by(Cohort.idnumber).limit(500))
            ),
            "languages": ["en", "fr"],
            "auths": ["manual", "ldap", "oauth2", "saml2", "cas"],
        },
        "labels": labels(),
    }


def labels() -> dict[str, str]:
    """The builder's words, translated on the server so the script needs no catalogue."""
    return {
        "&": _("all of these"),
        "|": _("any of these"),
        "!&": _("not all of these"),
        "!|": _("none of these"),
        "match": _("Match"),
        "add_condition": _("Add condition"),
        "add_group": _("Add group"),
        "remove": _("Remove"),
        "type": _("Condition type"),
        "field": _("Field"),
        "operator": _("Operator"),
        "value": _("Value"),
        "from": _("from"),
        "until": _("until"),
        "date": _("Date (UTC)"),
        "json": _("Condition as JSON"),
        "empty": _("No conditions: everyone matches."),
        "unreadable": _(
            "The rule below is not valid JSON, so the builder cannot show it. Fix it by hand."
        ),
        "bad_json": _("Not valid JSON"),
    }


def check(site: Site, text: str) -> tuple[str | None, list[str]]:
    """Parse a posted rule: (error, warnings). The error names the JSON path of the bad node;
    warnings list names the site lacks (a rule may name a badge created later)."""
    try:
        rule = parse(text, site.plugins.conditions)
    except RuleError as exc:
        return str(exc), []
    errors = rule.errors(site)
    return ("; ".join(errors) if errors else None), rule.problems(site)
