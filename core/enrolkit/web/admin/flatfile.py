"""The flat file: drop-folder status, upload, dry-run preview, processing now, and the processed
files with their error reports. Everything is done by the ``enrol_flatfile`` plugin's own API;
without the plugin the page says it is not installed."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from ...errors import EnrolkitError
from ...uploads import MAX_NAME, NameTooLong, upload_name
from ..guards import admin_required, site
from ..i18n import message_of, say
from . import bp

METHOD = "flatfile"
#: Processed files listed, newest first.
HISTORY = 50


def _plugin():
    """The plugin's modules, or None when it is not installed on this site."""
    if METHOD not in site().plugins.methods:
        return None
    from enrol_flatfile import method, models, processor, report

    return method, models, processor, report


def _pending(processor, folder: Path) -> list[dict]:
    rows = []
    for path in processor.drop_folder_files(folder):
        info = path.stat()
        rows.append(
            {
                "name": path.name,
                "size": info.st_size,
                "modified": datetime.fromtimestamp(int(info.st_mtime), UTC).strftime(
                    "%Y-%m-%d %H:%M"
                ),
            }
        )
    return rows


@bp.get("/flatfile")
@admin_required
def flatfile():
    plugin = _plugin()
    if plugin is None:
        return render_template("admin/flatfile.html", installed=False)
    method, models, processor, _report = plugin
    s = site()
    history = s.session.scalars(
        select(models.FlatfileFile).order_by(models.FlatfileFile.id.desc()).limit(HISTORY)
    ).all()
    try:
        folder = method.load_settings(s).folder
    except EnrolkitError as exc:  # a folder stored before the confinement rule
        return render_template(
            "admin/flatfile.html",
            installed=True,
            enabled=s.method_enabled(METHOD),
            folder_error=str(exc),
            pending=[],
            history=history,
        )
    return render_template(
        "admin/flatfile.html",
        installed=True,
        enabled=s.method_enabled(METHOD),
        folder=folder,
        folder_exists=folder.is_dir(),
        pending=_pending(processor, folder),
        history=history,
    )


def _folder(method):
    """The drop folder, or None after flashing why it is refused."""
    try:
        return method.load_settings(site()).folder
    except EnrolkitError as exc:
        say(message_of(exc), "error")
        return None


@bp.post("/flatfile/upload")
@admin_required
def flatfile_upload():
    """Store the file in the drop folder: written under a hidden name (which the processor
    skips), then renamed, so a run never sees half a file."""
    plugin = _plugin()
    if plugin is None:
        abort(404)
    method, _models, processor, _report = plugin
    upload = request.files.get("file")
    try:
        name = upload_name(upload.filename) if upload else ""
    except NameTooLong:
        flash(
            _(
                "The file name is longer than %(max)d characters; rename the file and upload it "
                "again.",
                max=MAX_NAME,
            ),
            "error",
        )
        return redirect(url_for("admin.flatfile"))
    if not name or name.startswith("."):
        flash(_("Choose a file to upload."), "error")
        return redirect(url_for("admin.flatfile"))
    if name.endswith((processor.DONE_SUFFIX, processor.ERRORS_SUFFIX)):
        flash(_("This name is kept for processed files; rename the file."), "error")
        return redirect(url_for("admin.flatfile"))
    folder = _folder(method)
    if folder is None:
        return redirect(url_for("admin.flatfile"))
    try:
        target = processor.receive(folder, name, upload.save)
    except OSError as exc:
        flash(
            _(
                "Cannot write to the drop folder %(folder)s: %(error)s",
                folder=folder,
                error=exc.strerror,
            ),
            "error",
        )
        return redirect(url_for("admin.flatfile"))
    flash(_("%(name)s is in the drop folder.", name=target.name), "success")
    return redirect(url_for("admin.flatfile"))


@bp.post("/flatfile/process")
@admin_required
def flatfile_process():
    plugin = _plugin()
    if plugin is None:
        abort(404)
    method, _models, processor, _report = plugin
    s = site()
    folder = _folder(method)
    if folder is None:
        return redirect(url_for("admin.flatfile"))
    name = request.form.get("file", "")
    dry_run = request.form.get("dry_run") == "1"
    path = None
    if name:
        path = next((p for p in processor.drop_folder_files(folder) if p.name == name), None)
        if path is None:
            flash(_("%(name)s is not waiting in the drop folder.", name=name), "error")
            return redirect(url_for("admin.flatfile"))
    try:
        results = list(processor.process(s, path=path, dry_run=dry_run))
    except EnrolkitError as exc:
        s.session.rollback()
        say(message_of(exc), "error")
        return redirect(url_for("admin.flatfile"))
    if dry_run:
        return render_template("admin/flatfile_preview.html", results=results)
    if not results:
        flash(_("No file to apply in the drop folder."), "success")
    for result in results:
        bad = result.counts.get("rejected") or result.outcome != processor.APPLIED
        say(result.summary(), "error" if bad else "success")
        if result.note:
            say(result.note, "error")
    return redirect(url_for("admin.flatfile"))


@bp.get("/flatfile/files/<int:file_id>")
@admin_required
def flatfile_file(file_id: int):
    plugin = _plugin()
    if plugin is None:
        abort(404)
    method, models, processor, report = plugin
    journal = site().session.get(models.FlatfileFile, file_id)
    if journal is None:
        abort(404)
    folder = _folder(method)
    if folder is None:
        return redirect(url_for("admin.flatfile"))
    errors_file = folder / f"{journal.target or journal.name}{processor.ERRORS_SUFFIX}"
    return render_template(
        "admin/flatfile_file.html",
        journal=journal,
        summary=report.summary(journal.name, journal.counts or {}),
        errors=report.kept_errors(site(), file_id) or report.read_errors(errors_file),
        errors_file=errors_file if errors_file.is_file() else None,
        shown=report.SHOWN_ERRORS,
    )
