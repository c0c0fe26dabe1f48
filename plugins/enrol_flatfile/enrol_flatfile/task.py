"""The scheduled task (hourly by default; ``enrolkit task set flatfile_sync "..."``)."""

from __future__ import annotations

from enrolkit.site import Site

from .method import NAME, load_settings
from .processor import process


def run_task(site: Site) -> str:
    """Apply the drop folder, as ``enrolkit flatfile process`` does; a disabled method does
    nothing (Moodle's task returns at once too)."""
    if not site.method_enabled(NAME):
        return "flat-file enrolment is disabled; nothing done"
    results = list(process(site))
    if not results:
        return f"no file to apply in {load_settings(site).folder}"
    total = {key: sum(r.counts.get(key, 0) for r in results) for key in ("lines", "rejected")}
    return (
        f"{len(results)} file(s) applied ({', '.join(r.name for r in results)}): "
        f"{total['lines']} line(s), {total['rejected']} rejected"
    )
