"""The names of uploaded files (web and API): made safe for the file system, and short enough.

An upload keeps its name (so row errors name the file as sent, and flat files keep theirs in
the drop folder), and the name gets suffixes (``.done``, ``.errors.csv``, ``.2``). File systems
stop at 255 bytes: a longer name gave a 500 ("File name too long"). Names over
:data:`MAX_NAME` characters are refused up front, naming the limit.
"""

from __future__ import annotations

from werkzeug.utils import secure_filename

from .errors import EnrolkitError

#: Room for every suffix the project adds within a file system's 255 bytes.
MAX_NAME = 200


class NameTooLong(EnrolkitError):
    """An upload's name over :data:`MAX_NAME` characters."""


def upload_name(filename: str | None) -> str:
    """The upload's name made safe ('' when none is left), or :class:`NameTooLong`."""
    name = secure_filename(filename or "")
    if len(name) > MAX_NAME:
        raise NameTooLong(
            f"the file name has {len(name)} characters; at most {MAX_NAME} are accepted: "
            f"rename the file and upload it again"
        )
    return name
