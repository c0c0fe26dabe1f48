"""CSV uploads for the import endpoints: the upload is written to a temporary file and read by the
same import function as ``enrolkit user|course|cohort import FILE``."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from werkzeug.datastructures import FileStorage

from ..uploads import NameTooLong, upload_name
from .common import FieldError


def run_import(upload: FileStorage, importer: Callable, site, strict: bool) -> dict:
    """``importer(site, path, strict=...)`` on the uploaded file; the report as the API shows it.
    The temporary file keeps the upload's name, so row errors name the file as uploaded."""
    if not isinstance(upload, FileStorage):
        raise FieldError("file", "upload the CSV file as multipart/form-data", "files")
    try:
        name = upload_name(upload.filename) or "upload.csv"
    except NameTooLong as exc:
        raise FieldError("file", str(exc), "files") from None
    with tempfile.TemporaryDirectory(prefix="enrolkit-import-") as folder:
        path = Path(folder) / name
        upload.save(path)
        created, updated, errors = importer(site, path, strict=strict)
    return {
        "created": created,
        "updated": updated,
        "rejected": [{"line": e.line, "message": e.message} for e in errors],
    }
