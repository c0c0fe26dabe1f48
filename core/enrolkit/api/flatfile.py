"""The flat file: upload into the drop folder, the files waiting there, the processed ones, and
processing now. All of it is the ``enrol_flatfile`` plugin's own API (what ``enrolkit flatfile
process`` and the admin page use); without the plugin these answer 404."""

from __future__ import annotations

from pathlib import Path

from flask_smorest import Page
from sqlalchemy import select
from werkzeug.datastructures import FileStorage

from ..errors import NotFound, Refused
from ..uploads import NameTooLong, upload_name
from . import schemas as s
from .common import FieldError, Query, SqlPage, blueprint, site

METHOD = "flatfile"

flatfile = blueprint("flatfile", "Flat-file enrolment: the drop folder and its processing.")


def _plugin():
    """The plugin's modules; NotFound when the site does not have it."""
    if METHOD not in site().plugins.methods:
        raise NotFound("flat-file enrolment is not installed (the enrol_flatfile plugin)")
    from enrol_flatfile import method, models, processor

    return method, models, processor


def _drop_row(path: Path) -> dict:
    info = path.stat()
    return {"name": path.name, "size": info.st_size, "modified": int(info.st_mtime)}


@flatfile.get("/flatfile/pending")
@flatfile.response(200, s.DropFile(many=True))
@flatfile.paginate(Page)
@flatfile.reads(404)
def pending():
    """Files waiting in the drop folder, in the order they will be applied."""
    method, _models, processor = _plugin()
    folder = method.load_settings(site()).folder
    return [_drop_row(path) for path in processor.drop_folder_files(folder)]


@flatfile.post("/flatfile/pending")
@flatfile.arguments(s.ImportFile, location="files")
@flatfile.response(201, s.DropFile)
@flatfile.writes(404, 409, 422)
def upload(files):
    """Put a file in the drop folder: written under a hidden name (which processing skips), then
    renamed, so a run never sees half a file. A name in use gets a suffix (`.2`, ...)."""
    method, _models, processor = _plugin()
    upload: FileStorage = files["file"]
    if not isinstance(upload, FileStorage):
        raise FieldError("file", "upload the file as multipart/form-data", "files")
    try:
        name = upload_name(upload.filename)
    except NameTooLong as exc:
        raise FieldError("file", str(exc), "files") from None
    if not name or name.startswith("."):
        raise FieldError("file", "the upload needs a file name", "files")
    if name.endswith((processor.DONE_SUFFIX, processor.ERRORS_SUFFIX)):
        raise FieldError("file", "this name is kept for processed files; rename the file", "files")
    folder = method.load_settings(site()).folder
    try:
        target = processor.receive(folder, name, upload.save)
    except OSError as exc:
        raise Refused(f"cannot write to the drop folder {folder}: {exc.strerror}") from None
    return _drop_row(target), 201


@flatfile.post("/flatfile/process")
@flatfile.arguments(s.FlatfileRun)
@flatfile.response(200, s.FlatfileResult(many=True))
@flatfile.writes(404, 409, 422)
def process(args):
    """Apply the drop folder's files in name order, or only `file`, as `enrolkit flatfile
    process`; `dry_run` reports what would change. Each applied file is renamed `.done`."""
    method, _models, processor = _plugin()
    path = None
    if args.get("file"):
        folder = method.load_settings(site()).folder
        path = next(
            (p for p in processor.drop_folder_files(folder) if p.name == args["file"]), None
        )
        if path is None:
            raise FieldError("file", f"{args['file']} is not waiting in the drop folder")
    results = processor.process(site(), path=path, dry_run=args["dry_run"])
    return [result.as_json() for result in results]


@flatfile.get("/flatfile/files")
@flatfile.response(200, s.ProcessedFile(many=True))
@flatfile.paginate(SqlPage)
@flatfile.reads(404)
def processed():
    """Files seen by processing, newest first, with what each did (`counts`)."""
    _method, models, _processor = _plugin()
    return Query(select(models.FlatfileFile).order_by(models.FlatfileFile.id.desc()))
