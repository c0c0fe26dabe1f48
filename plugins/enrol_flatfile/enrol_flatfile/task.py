"""The scheduled task (hourly by default; ``enrolkit task set flatfile_sync "..."``)."""

from __future__ import annotations

from enrolkit.site import Site
from enrolkit.texts import Text

from .method import NAME, load_settings
from .processor import process


def run_task(site: Site) -> Text:
    """Apply the drop folder, as ``enrolkit flatfile process`` does; a disabled method does
    nothing (Moodle's task returns at once too)."""
    if not site.method_enabled(NAME):
        return Text("flat-file enrolment is disabled; nothing done")
    results = list(process(site))
    if not results:
        return Text("no file to apply in %(folder)s", folder=str(load_settings(site).folder))
    total = {key: sum(r.counts.get(key, 0) for r in results) for key in ("lines", "rejected")}
    return Text(
        "%(count)d file(s) applied (%(names)s): %(lines)d line(s), %(rejected)d rejected",
        count=len(results),
        names=", ".join(r.name for r in results),
        lines=total["lines"],
        rejected=total["rejected"],
    )
