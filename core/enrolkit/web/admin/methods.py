"""Enrolment methods: the installed ones with their version, on or off, their order, and each
method's site settings form (rendered from its schema through ``render_settings``)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...errors import EnrolkitError, SettingsError
from ...plugins import Plugins
from ...site import CORE, ENABLED_METHODS
from .. import forms
from ..guards import admin_required, site
from ..i18n import message_of, say
from . import bp


def versions(plugins: Plugins) -> dict[str, tuple[str, str]]:
    """Method name -> (distribution, version) of the plugin whose package defines it."""
    by_package = {}
    infos = {info.name: info for info in plugins.list()}
    for name, plugin in plugins.pm.list_name_plugin():
        module = getattr(plugin, "__name__", "")
        if name in infos and module:
            info = infos[name]
            by_package.setdefault(module.split(".")[0], (info.distribution, info.version))
    return {
        name: by_package.get(type(method).__module__.split(".")[0], ("?", "?"))
        for name, method in plugins.methods.items()
    }


@bp.get("/methods")
@admin_required
def methods():
    s = site()
    enabled = s.enabled_methods()
    disabled = sorted(name for name in s.plugins.methods if name not in enabled)
    return render_template(
        "admin/methods.html",
        enabled=enabled,
        disabled=disabled,
        methods=s.plugins.methods,
        versions=versions(s.plugins),
    )


def _method(name: str):
    try:
        return site().plugins.method(name)
    except EnrolkitError:
        abort(404)


@bp.post("/methods/<name>/toggle")
@admin_required
def toggle_method(name: str):
    s = site()
    _method(name)
    on = not s.method_enabled(name)
    try:
        with s.atomic():
            s.set_method_enabled(name, on)
    except EnrolkitError as exc:  # the method refused to be enabled (e.g. no drop folder)
        say(message_of(exc), "error")
        return redirect(url_for("admin.methods"))
    flash(
        _("%(name)s enabled.", name=name) if on else _("%(name)s disabled.", name=name), "success"
    )
    return redirect(url_for("admin.methods"))


@bp.post("/methods/<name>/move")
@admin_required
def move_method(name: str):
    """Move an enabled method one place up or down in the site's order."""
    s = site()
    _method(name)
    order = s.enabled_methods()
    if name not in order:
        flash(_("Only enabled methods have an order."), "error")
        return redirect(url_for("admin.methods"))
    index = order.index(name)
    other = index - 1 if request.form.get("direction") == "up" else index + 1
    if 0 <= other < len(order):
        order[index], order[other] = order[other], order[index]
        with s.atomic():
            s.set_config(CORE, ENABLED_METHODS, order)
    return redirect(url_for("admin.methods"))


@bp.route("/methods/<name>/settings", methods=["GET", "POST"])
@admin_required
def method_settings(name: str):
    s = site()
    method = _method(name)
    errors: dict = {}
    if method.site_schema is None:
        values: dict = {}
    elif request.method == "POST":
        values = forms.posted(method.site_schema)
        try:
            with s.atomic():
                s.set_method_settings(name, values)
        except SettingsError as exc:
            errors = exc.messages
        else:
            flash(_("Settings of %(name)s saved.", name=name), "success")
            return redirect(url_for("admin.method_settings", name=name))
    else:
        try:
            values = s.method_settings(name)
        except SettingsError as exc:  # stored before a rule was added: shown with why, to fix
            values, errors = s.stored_method_settings(name), exc.messages
    return render_template(
        "admin/method_settings.html",
        method=method,
        form=forms.render(s, method, "site", values, errors),
        errors=errors,
    ), (400 if errors and request.method == "POST" else 200)
