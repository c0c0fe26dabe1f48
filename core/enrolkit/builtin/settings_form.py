"""The default ``render_settings``: any marshmallow schema as an HTML form.

Labels, help texts and choices come from field metadata (``label``, ``help``, ``choices``,
``widget``, ``pick``: the searchable picker that suggests values), each looked up in the
catalogs (the plugin ships their French in its own ``translations/`` folder). A plugin overrides
it for its own method by implementing the hook.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from markupsafe import Markup, escape

from .. import hookimpl

if TYPE_CHECKING:
    from marshmallow import fields


#: The catalog context of a choice's label: a choice is a code (``unenrol``, ``login``), read
#: in the catalog as ``msgctxt "setting choice"`` so it never collides with a sentence.
CHOICE = "setting choice"


@hookimpl
def render_settings(method, scope, schema, values, errors):
    rows = [
        render_field(name, field, values.get(name, _default(field)), errors.get(name))
        for name, field in schema.fields.items()
        if not field.dump_only
    ]
    return str(
        Markup('<div class="settings settings-{}-{}">{}</div>').format(
            method.name, scope, Markup("").join(rows)
        )
    )


def _default(field: fields.Field):
    """What an empty form shows: the field's load default, or nothing when it has none (a
    required field's default is marshmallow's ``missing`` marker, never a value to show)."""
    from marshmallow import missing

    default = field.load_default
    return "" if default is None or default is missing or callable(default) else default


def _locale() -> str:
    """The reader's language inside a web request (the form is rendered there), else English."""
    from flask import has_request_context

    if has_request_context():
        from flask_babel import get_locale

        return str(get_locale() or "en")
    return "en"


def _time_value(value) -> str:
    """A stored time (Unix seconds) as ``<input type=datetime-local>`` wants it, in the reader's
    time zone (the web reads it back in that zone); a typed value that is not seconds (a failed
    post) is shown back as typed."""
    from ..web.i18n import local_input

    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return local_input(int(value), with_time=True)
    return str(value or "")


def render_field(name: str, field: fields.Field, value, error) -> Markup:
    # Imported here: every CLI call loads this plugin, and a listing needs neither Flask nor
    # marshmallow (see benchmarks/bench_cli.py).
    from flask_babel import gettext, pgettext
    from marshmallow import fields

    from ..fields import Duration, Secret, Time, compact_duration, duration_words

    meta = field.metadata
    label = gettext(meta.get("label") or name.replace("_", " ").capitalize())
    ident = f"f-{name}"
    choices = meta.get("choices")
    if choices:
        options = Markup("").join(
            Markup('<option value="{}"{}>{}</option>').format(
                choice,
                Markup(" selected") if str(choice) == str(value) else "",
                pgettext(CHOICE, str(choice)),
            )
            for choice in choices
        )
        control = Markup('<select id="{}" name="{}">{}</select>').format(ident, name, options)
    elif isinstance(field, Secret):
        control = _secret_control(ident, name, value)
    elif isinstance(field, fields.Boolean):
        control = Markup('<input type="checkbox" id="{}" name="{}" value="1"{}>').format(
            ident, name, Markup(" checked") if value in (True, "1", "on", "true") else ""
        )
    elif meta.get("widget") == "textarea":
        control = Markup('<textarea id="{}" name="{}" rows="6">{}</textarea>').format(
            ident, name, value
        )
    elif isinstance(field, Duration):
        seconds = value if isinstance(value, int) else None
        if isinstance(value, str) and value.isdigit():
            seconds = int(value)
        words = duration_words(seconds, _locale()) if seconds else ""
        control = Markup(
            '<input type="text" id="{}" name="{}" value="{}" inputmode="text" '
            'aria-describedby="{}-words" placeholder="2d, 12h, 1w, P2D">'
            '<output class="duration-words" id="{}-words">{}</output>'
        ).format(
            ident,
            name,
            compact_duration(seconds) if seconds is not None else value,
            ident,
            ident,
            words,
        )
    elif isinstance(field, Time):
        control = Markup('<input type="datetime-local" id="{}" name="{}" value="{}">').format(
            ident, name, _time_value(value)
        )
    else:
        kind = "number" if isinstance(field, fields.Integer | fields.Float) else "text"
        # ``pick``: the picker (users, cohorts, courses, categories, roles) that suggests values.
        pick = Markup(' data-pick="{}"').format(meta["pick"]) if meta.get("pick") else ""
        control = Markup('<input type="{}" id="{}" name="{}" value="{}"{}>').format(
            kind, ident, name, value, pick
        )
    help_text = (
        Markup('<small class="help">{}</small>').format(gettext(meta["help"]))
        if meta.get("help")
        else ""
    )
    messages = error if isinstance(error, list) else ([error] if error else [])
    error_html = Markup("").join(
        Markup('<p class="field-error" role="alert">{}</p>').format(m) for m in messages
    )
    return Markup('<div class="field{}"><label for="{}">{}</label>{}{}{}</div>').format(
        " has-error" if messages else "", ident, escape(label), control, help_text, error_html
    )


def _secret_control(ident: str, name: str, value) -> Markup:
    """A secret is write-only: an empty password input (left empty, the secret stays), whether
    one is set, and a box to clear it (``<name>__clear``). Its hash never reaches the page."""
    from flask_babel import gettext

    state = gettext("set") if value else gettext("not set")
    clear = (
        Markup(
            '<label class="inline"><input type="checkbox" name="{}__clear" value="1"> {}</label>'
        ).format(name, gettext("Clear it"))
        if value
        else ""
    )
    return Markup(
        '<input type="password" id="{}" name="{}" value="" autocomplete="new-password">'
        '<span class="secret-state">{}</span>{}'
    ).format(ident, name, state, clear)
