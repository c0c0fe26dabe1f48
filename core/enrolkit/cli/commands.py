"""Imports every command module so its commands register on the ``enrolkit`` group."""

from . import admin, courses, people, system  # noqa: F401
