"""The change feed: pages after a cursor, in commit order, with concurrent writers on PostgreSQL."""

from __future__ import annotations

import json
import os
import random
import threading
import time

import pytest
from enrolkit import feed
from enrolkit.enrolments import enrol_manually, unenrol_manually
from enrolkit.testing import fresh_database_url
from sqlalchemy import text

INSERT = (
    "INSERT INTO log (time, event, component, origin, reason)"
    " VALUES (0, 'user_enrolled', 'test', 'cli', :reason)"
)


def follow(site, after=None, limit=3) -> tuple[list[dict], str]:
    """Every change after ``after``, page by page, as a poller would."""
    seen = []
    while True:
        site.session.rollback()  # a new snapshot per poll
        page = feed.changes(site, after, limit)
        seen += page.changes
        if not page.changes:
            return seen, page.next
        after = page.next


def test_pages_follow_each_other_without_gaps_or_repeats(db_site, clock):
    course = db_site.course("C")
    db_site.instance(course, "manual")
    users = db_site.users(4)
    db_site.session.commit()
    for user in users:
        enrol_manually(db_site, user, course, role=db_site.role("student"))

    seen, cursor = follow(db_site)
    assert [(c["event"], c["username"]) for c in seen] == [
        pair
        for user in users
        for pair in (("user_enrolled", user.username), ("role_assigned", user.username))
    ]
    assert seen[0]["course"] == "C" and seen[0]["component"] == "enrol_manual"

    unenrol_manually(db_site, users[0], course)
    more, _ = follow(db_site, cursor)
    assert [(c["event"], c["username"]) for c in more] == [
        ("user_unenrolled", "u1"),
        ("role_unassigned", "u1"),
    ]
    assert feed.changes(db_site, more[-1]["cursor"]).changes == []


def test_a_cursor_not_handed_out_is_refused(db_site):
    for bad in ("nonsense", "djE6eDp5", "€"):
        with pytest.raises(feed.CursorError, match="not handed out by this feed"):
            feed.changes(db_site, bad)


def test_the_cli_pages_through_the_feed(cli, site, clock):
    course = site.course("C")
    site.instance(course, "manual")
    (user,) = site.users(1)
    site.session.commit()
    enrol_manually(site, user, course)
    result = cli("changes", "--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)
    assert [c["event"] for c in first["changes"]] == ["user_enrolled"]
    rest = json.loads(cli("changes", "--json", "--after", first["next"]).stdout)
    assert [c["event"] for c in rest["changes"]] == ["role_assigned"]
    end = json.loads(cli("changes", "--json", "--after", rest["next"]).stdout)
    assert end == {"changes": [], "next": rest["next"]}
    bad = cli("changes", "--after", "zzz")
    assert bad.exit_code == 1 and "not handed out by this feed" in bad.output


@pytest.fixture
def pg_runtime(make_runtime, tmp_path):
    if not os.environ.get("ENROLKIT_TEST_POSTGRES_URL"):
        pytest.skip("needs ENROLKIT_TEST_POSTGRES_URL (commit order only differs on PostgreSQL)")
    return make_runtime(url=fresh_database_url("postgresql", tmp_path))


def test_a_change_committed_late_is_not_skipped(pg_runtime):
    """Id 1 is written first and committed last: the feed waits for it rather than hand out a
    cursor past it (reading by id alone would return id 2 and never id 1)."""
    with pg_runtime.db.connect() as slow, pg_runtime.db.connect() as fast:
        slow.execute(text(INSERT), {"reason": "slow"})
        fast.execute(text(INSERT), {"reason": "fast"})
        fast.commit()
        with pg_runtime.site() as site:
            assert feed.changes(site).changes == []
            slow.commit()
            site.session.rollback()
            assert [c["reason"] for c in feed.changes(site).changes] == ["slow", "fast"]


def test_concurrent_writers_are_each_seen_exactly_once(pg_runtime):
    writers, per_writer = 6, 15
    done = threading.Event()
    seen: list[str] = []

    def write(number: int) -> None:
        rng = random.Random(number)
        with pg_runtime.db.connect() as conn:
            for i in range(per_writer):
                conn.execute(text(INSERT), {"reason": f"{number}-{i}"})
                time.sleep(rng.uniform(0, 0.02))  # commit after others wrote later ids
                conn.execute(text(INSERT), {"reason": f"{number}-{i}b"})
                conn.commit()

    def read() -> None:
        after = None
        with pg_runtime.site() as site:
            while True:
                finished = done.is_set()
                changes, after = follow(site, after, limit=7)
                seen.extend(c["reason"] for c in changes)
                if finished:
                    return
                time.sleep(0.003)

    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join(60)

    expected = {f"{n}-{i}{s}" for n in range(writers) for i in range(per_writer) for s in ("", "b")}
    assert len(seen) == len(expected) and set(seen) == expected
    for n in range(writers):  # each transaction's rows together, in order
        mine = [r for r in seen if r.startswith(f"{n}-")]
        assert mine == [f"{n}-{i}{s}" for i in range(per_writer) for s in ("", "b")]
