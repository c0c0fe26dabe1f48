"""Imports every command module so its commands register on the ``enrolkit`` group."""

from . import (  # noqa: F401
    admin,
    categories,
    changes,
    courses,
    groups,
    mail,
    pending,
    people,
    scaffold,
    system,
    tasks,
    templates,
    tokens,
    webhooks,
)
