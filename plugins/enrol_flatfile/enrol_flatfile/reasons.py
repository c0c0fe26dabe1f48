"""Why a line of a file is rejected: :class:`~enrolkit.texts.Text` reasons, kept as message id
and parameters in ``flatfile_rejects`` (:class:`~enrolkit.models.base.StoredText`), so the mail,
the pages and the error report show them in their reader's language.

A value quoted from the file is only ever a parameter, clipped to :data:`VALUE_CAP` characters
and quoted with ``repr`` (control characters escaped): it is never looked up in a catalog nor
read as a format.
"""

from __future__ import annotations

from enrolkit.texts import N_, Text

#: Characters of a value from the file quoted in a reason.
VALUE_CAP = 120

#: (what the file names, whether it matched several) -> reason (else it matched none).
_MISSING = {
    ("user", False): N_("unknown user %(value)s"),
    ("user idnumber", False): N_("unknown user idnumber %(value)s"),
    ("course", False): N_("unknown course %(value)s"),
    ("course idnumber", False): N_("unknown course idnumber %(value)s"),
    ("user", True): N_("user %(value)s matches %(count)d users; make it unique"),
    ("user idnumber", True): N_("user idnumber %(value)s matches %(count)d users; make it unique"),
    ("course", True): N_("course %(value)s matches %(count)d courses; make it unique"),
    ("course idnumber", True): N_(
        "course idnumber %(value)s matches %(count)d courses; make it unique"
    ),
}


def quoted(value: str) -> str:
    """``value`` from the file as a reason quotes it: ``repr`` (``'ann'``), clipped to
    :data:`VALUE_CAP` characters saying how many more there were (in the reader's language)."""
    if len(value) <= VALUE_CAP:
        return repr(value)
    return Text(
        "%(value)s... (%(count)d more characters)",
        value=repr(value[:VALUE_CAP]),
        count=len(value) - VALUE_CAP,
    )


def missing(label: str, value: str, found: int) -> Text:
    """Why a line naming ``value`` (a ``label``: user, user idnumber, course, course idnumber)
    is rejected: ``found`` is 0 when nothing has that name, ``-n`` when n things have it."""
    return Text(_MISSING[label, found < 0], value=quoted(value), count=-found)
