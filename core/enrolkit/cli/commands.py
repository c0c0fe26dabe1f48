"""Imports every command module so its commands register on the ``enrolkit`` group."""

from . import admin, courses, mail, people, system, tasks, templates  # noqa: F401
