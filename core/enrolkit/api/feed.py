"""The change feed (`enrolkit changes`): enrolment and role changes in commit order."""

from __future__ import annotations

from .. import feed
from . import schemas as s
from .common import FieldError, blueprint, site

changes_bp = blueprint("changes", "The change feed: poll it with the 'next' cursor of each page.")


@changes_bp.get("/changes")
@changes_bp.arguments(s.ChangesQuery, location="query")
@changes_bp.response(200, s.ChangesPage)
@changes_bp.reads(422)
def list_changes(args):
    """Changes after the cursor, oldest first. A change committed later never comes before a
    cursor already handed out: poll with ``next`` and nothing is missed or seen twice."""
    try:
        page = feed.changes(site(), args.get("after"), args["limit"])
    except feed.CursorError as exc:
        raise FieldError("after", str(exc), location="query") from None
    return {"changes": page.changes, "next": page.next}
