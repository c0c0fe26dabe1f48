"""Issue 16, item 12: ``enrolkit pending list [--course] [--user] [--json]`` shows the queue of
future-dated changes, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from enrolkit.enrolments import ensure_instance
from enrolkit.pending import schedule


@pytest.fixture
def runtime(any_db, make_runtime):
    return make_runtime(entry_points=True, url=any_db)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def test_pending_list_filters_by_course_and_user(cli, site, clock):
    ann, bob = site.user("ann"), site.user("bob")
    c1, c2 = site.course("C1"), site.course("C2")
    later, much_later = clock.now() + 86_400, clock.now() + 30 * 86_400
    with site.atomic():
        m1, m2 = ensure_instance(site.site, c1, "manual"), ensure_instance(site.site, c2, "manual")
    schedule(site.site, due=much_later, action="unenrol", instance_id=m1.id, user_id=ann.id,
             reason="flat file line 4")  # fmt: skip
    schedule(site.site, due=later, action="enrol", instance_id=m1.id, user_id=bob.id,
             role_id=site.role("teacher").id, timestart=later, reason="flat file line 2")  # fmt: skip
    schedule(site.site, due=later, action="enrol", instance_id=m2.id, user_id=ann.id,
             timestart=later, reason="completion of C1")  # fmt: skip

    rows = json.loads(ok(cli("pending", "list", "--json")).stdout)
    assert [(r["user"], r["course"], r["action"], r["due"]) for r in rows] == [
        ("bob", "C1", "enrol", later),
        ("ann", "C2", "enrol", later),
        ("ann", "C1", "unenrol", much_later),
    ]
    assert rows[0]["role"] == "teacher" and rows[0]["reason"] == "flat file line 2"

    only_c1 = json.loads(ok(cli("pending", "list", "--course", "C1", "--json")).stdout)
    assert [(r["user"], r["action"]) for r in only_c1] == [("bob", "enrol"), ("ann", "unenrol")]
    only_ann = json.loads(ok(cli("pending", "list", "--user", "ann", "--json")).stdout)
    assert [r["course"] for r in only_ann] == ["C2", "C1"]
    both = json.loads(
        ok(cli("pending", "list", "--user", "ann", "--course", "C1", "--json")).stdout
    )
    assert [r["action"] for r in both] == ["unenrol"]

    table = ok(cli("pending", "list", "--course", "C2")).stdout
    assert "2026-09-02 08:00" in table and str(later) not in table
    missing = cli("pending", "list", "--user", "nobody")
    assert missing.exit_code == 1 and "nobody" in missing.stderr
