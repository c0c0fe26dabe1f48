"""Texts people read, kept as a message id and its parameters until they are shown.

The engine and the methods decide in English-free terms: a denial reason, a rule explanation or a
refusal is a :class:`Text` (``Text("%(field)s is %(actual)s, expected %(wanted)s", ...)``). It *is*
the English sentence (a ``str``), so the CLI, the log and every existing caller read it as before;
and it keeps its message id and parameters, so a page or a mail translates it into the reader's
language where it is shown (:func:`translate`), parameters included (a parameter may itself be a
:class:`Text`). Nothing is translated in the engine, which has no reader.

A plugin marks its message ids the same way; the catalog test extracts ``Text(...)`` calls with
``_`` and ``gettext`` from every package, and each plugin ships the French of its own ids in its
``translations/`` folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Gettext = Callable[[str], str]


class Text(str):
    """An English sentence that remembers its message id and parameters.

    Parameters are substituted with ``%`` (named), as gettext catalogs expect. A ``Text`` built
    with :meth:`join` translates each part and joins them with the separator."""

    msgid: str
    params: dict[str, Any]
    parts: tuple[Any, ...] | None

    def __new__(cls, msgid: str, **params: Any) -> Text:
        text = super().__new__(cls, msgid % params if params else msgid)
        text.msgid = msgid
        text.params = params
        text.parts = None
        return text

    @classmethod
    def join(cls, separator: str, parts: Iterable[Any]) -> Text:
        """``separator.join(parts)``, each part translated on its own when shown."""
        parts = tuple(parts)
        text = super().__new__(cls, separator.join(str(part) for part in parts))
        text.msgid = separator
        text.params = {}
        text.parts = parts
        return text

    def translated(self, gettext: Gettext) -> str:
        """The sentence in the language of ``gettext`` (English with the identity)."""
        if self.parts is not None:
            return self.msgid.join(translate(part, gettext) for part in self.parts)
        pattern = gettext(self.msgid)
        if not self.params:
            return pattern
        return pattern % {name: translate(value, gettext) for name, value in self.params.items()}

    def __reduce__(self):
        return (_rebuild, (self.msgid, self.params, self.parts))


def _rebuild(msgid: str, params: dict[str, Any], parts: tuple[Any, ...] | None) -> Text:
    return Text.join(msgid, parts) if parts is not None else Text(msgid, **params)


def translate(value: Any, gettext: Gettext) -> Any:
    """A :class:`Text` in the language of ``gettext``; any other value as it is (a name, a number:
    what people typed is never looked up in a catalog)."""
    if isinstance(value, Text):
        return value.translated(gettext)
    return value


def N_(msgid: str) -> str:  # noqa: N802 - gettext's conventional name for "mark, do not translate"
    """Mark a constant string (a label in a table, a schema's help) for the catalog; it is looked
    up where it is shown."""
    return msgid
