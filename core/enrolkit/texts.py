"""Texts people read, kept as a message id and its parameters until they are shown.

The engine and the methods decide in English-free terms: a denial reason, a rule explanation or a
refusal is a :class:`Text` (``Text("%(field)s is %(actual)s, expected %(wanted)s", ...)``). It *is*
the English sentence (a ``str``), so the CLI, the log and every existing caller read it as before;
and it keeps its message id and parameters, so a page or a mail translates it into the reader's
language where it is shown (:func:`translate`), parameters included (a parameter may itself be a
:class:`Text`). Nothing is translated in the engine, which has no reader.

A text kept in the database to be shown later (a task's last result) is stored with
:func:`dumps` and read back with :func:`loads` (the :class:`~enrolkit.models.base.StoredText`
column type does both): JSON of its message id and parameters, so a page written months later
still translates it. A plain string (a row stored before, a name) is read as it is.

A plugin marks its message ids the same way; the catalog test extracts ``Text(...)`` calls with
``_`` and ``gettext`` from every package, and each plugin ships the French of its own ids in its
``translations/`` folder.
"""

from __future__ import annotations

import json
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


#: How a stored :class:`Text` begins; nothing else stored in a text column begins so (results and
#: reasons are sentences), and what does not parse is read as the plain string it is.
STORED_MARK = '{"text": '


def dumps(value: Any) -> str:
    """``value`` as a text column keeps it: a :class:`Text` as JSON of its message id and
    parameters (:data:`STORED_MARK` first), anything else as its string."""
    if not isinstance(value, Text):
        return str(value)
    return STORED_MARK + json.dumps(_tree(value), ensure_ascii=False) + "}"


def loads(stored: str) -> str:
    """What :func:`dumps` stored: a :class:`Text` again, or the plain string (English written
    before texts were stored this way) as it is."""
    if not stored.startswith(STORED_MARK):
        return stored
    try:
        return _from_tree(json.loads(stored)["text"])
    except (ValueError, KeyError, TypeError):
        return stored


def _tree(value: Any) -> Any:
    if isinstance(value, Text):
        if value.parts is not None:
            return {"join": value.msgid, "parts": [_tree(part) for part in value.parts]}
        return {"msgid": value.msgid, "params": {k: _tree(v) for k, v in value.params.items()}}
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)  # a name, a path: as it reads


def _from_tree(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if "join" in node:
        return Text.join(node["join"], [_from_tree(part) for part in node["parts"]])
    return Text(node["msgid"], **{k: _from_tree(v) for k, v in node["params"].items()})
