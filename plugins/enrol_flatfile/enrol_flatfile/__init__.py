"""Flat-file enrolment for enrolkit: files of ``add``/``del`` lines dropped in a folder are
applied on a schedule or by ``enrolkit flatfile process``.

See :mod:`.reader` for the formats, :mod:`.processor` for how a file is applied exactly once.
"""

from __future__ import annotations

from pathlib import Path

import enrolkit

NAME = "flatfile"
COMPONENT = f"enrol_{NAME}"

__all__ = ["COMPONENT", "NAME", "FlatfileMethod"]


def __getattr__(name: str):
    """The method class, imported on first use: this module stays light for start-up."""
    if name == "FlatfileMethod":
        from .method import FlatfileMethod

        return FlatfileMethod
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@enrolkit.hookimpl
def register_methods(register):
    from .method import FlatfileMethod

    register(FlatfileMethod())


@enrolkit.hookimpl
def register_tasks(register):
    from .task import run_task

    register("flatfile_sync", run_task, schedule="0 * * * *", component=COMPONENT)


@enrolkit.hookimpl
def register_migrations(register):
    register(Path(__file__).parent / "migrations")


@enrolkit.hookimpl
def register_commands(cli):
    from .cli import flatfile

    cli.add_command(flatfile)


@enrolkit.hookimpl
def enrolments_changed(site, changes):
    """New flat-file enrolments: the welcome to the user and the notice to the teacher, when the
    site asks for them (``mail_students``, ``mail_teachers``). The settings are read once for
    the batch: a chunk of a file touches a thousand courses."""
    new = [change for change in changes if change.method == NAME and change.enrolled]
    if not new:
        return
    settings = site.method_settings(NAME)
    if not (settings["mail_students"] or settings["mail_teachers"]):
        return
    from .notices import new_enrolments

    for change in new:
        new_enrolments(site, change.instance_id, change.enrolled)
