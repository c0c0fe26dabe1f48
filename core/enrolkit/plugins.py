"""The plugin manager facade: built-ins, then the ``enrolkit`` entry points, then ``check_pending``.

Core code calls hooks only through the typed methods of :class:`Plugins`, with keyword arguments.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from .errors import EnrolkitError, NotFound

if TYPE_CHECKING:
    import click
    from flask import Blueprint
    from marshmallow import Schema

    from .changes import (
        CourseAccess,
        EnrolmentChanges,
        InstanceChange,
        ProfileChange,
        RoleChange,
    )
    from .methods import EnrolMethod
    from .models import Course, User
    from .site import Site

PROJECT = "enrolkit"
ENTRY_POINT_GROUP = "enrolkit"

#: The core's own plugins, registered before entry points (so entry points are called first).
DEFAULT_PLUGINS = (
    "enrolkit.builtin.manual",
    "enrolkit.builtin.settings_form",
    "enrolkit.builtin.core_tasks",
    "enrolkit.builtin.mail_delivery",
    "enrolkit.builtin.webhook_delivery",
    "enrolkit.builtin.conditions",
)


class PluginError(EnrolkitError):
    """A plugin cannot be loaded: a misspelt hook, a duplicate method name, an import failure."""


@dataclass(frozen=True)
class TaskSpec:
    name: str
    run: Callable[[Site], Any]
    schedule: str
    component: str


@dataclass(frozen=True)
class PluginInfo:
    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]


class Plugins:
    """One plugin manager per app or site, loaded once."""

    def __init__(
        self,
        *,
        entry_points: bool = True,
        disable: tuple[str, ...] | None = None,
        extra: tuple[object, ...] = (),
        trace: bool | None = None,
    ) -> None:
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(hookspecs)
        if disable is None:
            raw = os.environ.get("ENROLKIT_DISABLE_PLUGINS", "")
            disable = tuple(name.strip() for name in raw.split(",") if name.strip())
        self.disabled = disable
        #: Each entry-point plugin's entry point; its distribution is read only by ``list``
        #: (reading a distribution's metadata costs more than loading a light plugin).
        self._entry_points: dict[str, importlib.metadata.EntryPoint] = {}
        for name in disable:
            self.pm.set_blocked(name)
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            self.pm.register(module, name=module_name.rsplit(".", 1)[-1])
        if entry_points:
            self._load_entry_points()
        for plugin in extra:
            self.pm.register(plugin)
        try:
            self.pm.check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(_describe_unknown_hook(self.pm, exc.plugin)) from None
        if trace if trace is not None else os.environ.get("ENROLKIT_TRACE_HOOKS"):
            self.pm.add_hookcall_monitoring(_trace_before, _trace_after)

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if self.pm.is_blocked(ep.name) or self.pm.get_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # an installed plugin that cannot import stops start-up
                raise PluginError(
                    f"plugin {ep.name!r} ({ep.value}) failed to import: {exc}; "
                    f"fix or uninstall it, or set ENROLKIT_DISABLE_PLUGINS={ep.name}"
                ) from exc
            self.pm.register(plugin, name=ep.name)
            self._entry_points[ep.name] = ep

    # --- registries filled by the register_* hooks --------------------------------------------
    # Each is collected on first use: loading the plugins only imports their (light) modules, so
    # ``enrolkit --help`` does not import every method's code; ``load_all`` collects them at once.

    def load_all(self) -> None:
        """Collect every registry now, so that a long-running process (the web app) stops at
        start on a plugin's mistake (a taken method name) rather than at its first use."""
        for registry in ("methods", "tasks", "conditions"):
            getattr(self, registry)

    @cached_property
    def methods(self) -> dict[str, EnrolMethod]:
        found: dict[str, EnrolMethod] = {}

        def register(method: EnrolMethod) -> None:
            if method.name in found:
                raise PluginError(
                    f"two plugins register the enrolment method {method.name!r}: "
                    f"{_qualname(found[method.name])} and {_qualname(method)}"
                )
            found[method.name] = method

        self.pm.hook.register_methods(register=register)
        return found

    @cached_property
    def tasks(self) -> dict[str, TaskSpec]:
        found: dict[str, TaskSpec] = {}

        def register(
            name: str,
            run: Callable,
            schedule: str = "0 * * * *",
            component: str = "core",
        ):
            from .tasks import check_schedule

            if name in found:
                raise PluginError(f"two plugins register the scheduled task {name!r}")
            schedule = check_schedule(schedule, where=f"default schedule of task {name!r}")
            found[name] = TaskSpec(name, run, schedule, component)

        self.pm.hook.register_tasks(register=register)
        return found

    @cached_property
    def conditions(self) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def register(condition_type: Any) -> None:
            name = condition_type.type
            if name in found:
                raise PluginError(f"two plugins register the rule condition type {name!r}")
            found[name] = condition_type

        self.pm.hook.register_conditions(register=register)
        return found

    def method(self, name: str) -> EnrolMethod:
        try:
            return self.methods[name]
        except KeyError:
            known = ", ".join(sorted(self.methods)) or "none"
            raise NotFound(
                f"no enrolment method {name!r} is installed (installed: {known})"
            ) from None

    # --- the typed facade: one method per hook -----------------------------------------------

    def register_commands(self, *, cli: click.Group) -> None:
        self.pm.hook.register_commands(cli=cli)

    def blueprints(self) -> list[Blueprint]:
        """The web blueprints plugins contribute (``register_blueprints``)."""
        found: list[Blueprint] = []
        self.pm.hook.register_blueprints(register=found.append)
        return found

    def migration_folders(self) -> list[str]:
        """The Alembic version folders plugins contribute (``register_migrations``)."""
        found: list[str] = []
        self.pm.hook.register_migrations(register=lambda path: found.append(str(path)))
        return found

    def translation_folders(self) -> list[str]:
        """The ``translations/`` folders of the plugin packages, by convention beside the
        plugin's module (``enrol_x/translations/fr/LC_MESSAGES/messages.mo``): each plugin ships
        the French of its own texts, merged into the web app's catalog."""
        found: list[str] = []
        for plugin in self.pm.get_plugins():
            source = getattr(plugin, "__file__", None)
            if source and Path(source).name == "__init__.py":
                folder = Path(source).parent / "translations"
                if folder.is_dir():
                    found.append(str(folder))
        return sorted(found)

    def on_login(self, *, site: Site, user: User) -> None:
        self.pm.hook.on_login(site=site, user=user)

    def on_course_view(
        self, *, site: Site, user: User, course: Course, enrolled: bool
    ) -> list[CourseAccess]:
        return self.pm.hook.on_course_view(site=site, user=user, course=course, enrolled=enrolled)

    def on_completion(self, *, site: Site, user: User, course: Course, timecompleted: int) -> None:
        self.pm.hook.on_completion(site=site, user=user, course=course, timecompleted=timecompleted)

    def on_cron(self, *, site: Site, now: int) -> None:
        self.pm.hook.on_cron(site=site, now=now)

    def render_settings(
        self,
        *,
        site: Site,
        method: EnrolMethod,
        scope: str,
        schema: Schema,
        values: dict,
        errors: dict,
    ) -> str:
        return self.pm.hook.render_settings(
            site=site, method=method, scope=scope, schema=schema, values=values, errors=errors
        )

    def enrolments_changed(self, *, site: Site, changes: tuple[EnrolmentChanges, ...]) -> None:
        self.pm.hook.enrolments_changed(site=site, changes=changes)

    def cohort_members_changed(
        self, *, site: Site, cohort_id: int, added: tuple[int, ...], removed: tuple[int, ...]
    ) -> None:
        self.pm.hook.cohort_members_changed(
            site=site, cohort_id=cohort_id, added=added, removed=removed
        )

    def cohort_deleted(self, *, site: Site, cohort_id: int) -> None:
        self.pm.hook.cohort_deleted(site=site, cohort_id=cohort_id)

    def role_assignments_changed(self, *, site: Site, changes: tuple[RoleChange, ...]) -> None:
        self.pm.hook.role_assignments_changed(site=site, changes=changes)

    def profile_changed(self, *, site: Site, change: ProfileChange) -> None:
        self.pm.hook.profile_changed(site=site, change=change)

    def courses_changed(self, *, site: Site, course_ids: tuple[int, ...]) -> None:
        self.pm.hook.courses_changed(site=site, course_ids=course_ids)

    def course_deleted(self, *, site: Site, course_id: int) -> None:
        self.pm.hook.course_deleted(site=site, course_id=course_id)

    def instance_changed(self, *, site: Site, change: InstanceChange) -> None:
        self.pm.hook.instance_changed(site=site, change=change)

    def method_settings_changed(self, *, site: Site, method: str, names: tuple[str, ...]) -> None:
        self.pm.hook.method_settings_changed(site=site, method=method, names=names)

    # --- introspection ---------------------------------------------------------------------

    def list(self) -> list[PluginInfo]:
        """Each registered plugin: name, distribution, version and the hooks it implements."""
        core = ("enrolkit", importlib.metadata.version("enrolkit"))
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            if plugin is None:
                continue
            hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or ()))
            ep = self._entry_points.get(name)
            if ep is None:
                distribution, version = core
            else:
                distribution, version = (ep.dist.name, ep.dist.version) if ep.dist else ("?", "?")
            infos.append(PluginInfo(name, distribution, version, hooks))
        return sorted(infos, key=lambda info: (info.distribution != "enrolkit", info.name))


def _describe_unknown_hook(pm: pluggy.PluginManager, plugin: object) -> str:
    """Name the plugin as ENROLKIT_DISABLE_PLUGINS knows it (its entry-point name)."""
    name = pm.get_name(plugin)
    module = getattr(plugin, "__name__", type(plugin).__name__)
    unknown = sorted(c.name for c in pm.get_hookcallers(plugin) or () if not c.has_spec())
    return (
        f"plugin {name!r} ({module}) implements unknown hook(s) {', '.join(unknown)}; "
        f"check the spelling against docs/hooks.md, or set ENROLKIT_DISABLE_PLUGINS={name}"
    )


def _qualname(obj: object) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _trace_before(hook_name: str, hook_impls, kwargs) -> None:
    shown = ", ".join(f"{key}={value!r:.60}" for key, value in kwargs.items())
    print(f"[enrolkit hook] {hook_name}({shown}) -> {len(hook_impls)} impl(s)", file=sys.stderr)


def _trace_after(outcome, hook_name: str, hook_impls, kwargs) -> None:
    print(f"[enrolkit hook] {hook_name} done", file=sys.stderr)
