"""Errors a user can act on. The CLI, web and API show their message, never a traceback.

Where to act instead depends on where the person is: an error may carry the command to run
(``cli``, added to what the CLI prints) and the page of the web admin (``web``, a link under the
message on a page). The message itself names things, never ids or commands, so the web and the
API show it as it is (:func:`message`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Where:
    """A page of the web admin where the refused thing can be done: the link's text (a
    :class:`~enrolkit.texts.Text`, in the reader's language), its endpoint and URL values."""

    label: str
    endpoint: str
    values: dict[str, Any] = field(default_factory=dict)


class EnrolkitError(Exception):
    """Something the user asked for cannot be done; the message says what and what to do."""

    def __init__(self, *args: Any, cli: str | None = None, web: Where | None = None) -> None:
        super().__init__(*args)
        self.cli = cli
        self.web = web

    def __str__(self) -> str:
        text = super().__str__()
        cli = getattr(self, "cli", None)
        return f"{text}: {cli}" if cli else text


def message(error: BaseException) -> Any:
    """What the web and the API show: the message without the CLI's command (still a
    :class:`~enrolkit.texts.Text` when it was raised with one)."""
    if len(error.args) == 1:
        return error.args[0]
    return Exception.__str__(error)


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
