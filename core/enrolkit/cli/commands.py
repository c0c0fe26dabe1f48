"""Imports every command module so its commands register on the ``enrolkit`` group."""

from . import system  # noqa: F401
