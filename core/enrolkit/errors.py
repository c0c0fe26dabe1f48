"""Errors a user can act on. The CLI, web and API show their message, never a traceback."""

from __future__ import annotations


class EnrolkitError(Exception):
    """Something the user asked for cannot be done; the message says what and what to do."""


class NotFound(EnrolkitError):
    """An unknown user, course, cohort, role, method, instance, category or plan."""


class Refused(EnrolkitError):
    """The action is not allowed (ownership, permissions, a conflicting state)."""


class SettingsError(EnrolkitError):
    """Settings failed validation; ``messages`` maps each field to its problems."""

    def __init__(self, messages: dict, where: str = "settings") -> None:
        self.messages = messages
        flat = "; ".join(
            f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for field, msgs in sorted(messages.items())
        )
        super().__init__(f"invalid {where}: {flat}")
