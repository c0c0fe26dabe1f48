"""Imports every command module so its commands register on the ``enrolkit`` group."""

from . import (  # noqa: F401
    admin,
    changes,
    courses,
    mail,
    people,
    scaffold,
    system,
    tasks,
    templates,
    tokens,
    webhooks,
)
