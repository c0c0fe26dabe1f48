"""Imports every command module so its commands register on the ``enrolkit`` group."""

from . import admin, categories, courses, mail, people, scaffold, system, tasks, templates, tokens  # noqa: F401
