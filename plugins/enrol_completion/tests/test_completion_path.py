"""The learning path: the chain of courses completion instances link, both ways from a course."""

from __future__ import annotations

from completion_helpers import listing, ok, refused


def link(cli, target: str, source: str) -> None:
    ok(cli("instance", "add", target, "completion", f"source={source}"))


def test_the_path_runs_both_ways_from_the_course(cli, site):
    for name in ("A", "B", "C", "D", "E", "LONE"):
        site.course(name, fullname=f"Course {name}")
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    link(cli, "B", "A")
    link(cli, "C", "B")
    link(cli, "C", "D")  # D's completion also leads to C
    link(cli, "E", "C")

    rows = listing(cli, "completion", "path", "B")

    assert [(r["position"], r["course"]) for r in rows] == [(-1, "A"), (0, "B"), (1, "C"), (2, "E")]
    by_course = {r["course"]: r for r in rows}
    assert by_course["C"]["requires"] == ["B", "D"]
    assert by_course["C"]["leads_to"] == ["E"]
    assert by_course["A"] == {
        "position": -1,
        "course": "A",
        "fullname": "Course A",
        "requires": [],
        "leads_to": ["B"],
    }
    upstream = [(r["position"], r["course"]) for r in listing(cli, "completion", "path", "E")]
    assert upstream == [(-3, "A"), (-2, "B"), (-2, "D"), (-1, "C"), (0, "E")]
    assert listing(cli, "completion", "path", "LONE") == [
        {"position": 0, "course": "LONE", "fullname": "Course LONE", "requires": [], "leads_to": []}
    ]
    table = ok(cli("completion", "path", "B")).stdout.splitlines()
    assert table[0].split() == ["position", "course", "fullname", "requires", "leads_to"]
    assert table[1].split() == ["-1", "A", "Course", "A", "B"]


def test_a_cycle_ends_where_it_comes_back(cli, site):
    for name in ("A", "B", "C"):
        site.course(name)
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    link(cli, "B", "A")
    link(cli, "C", "B")
    link(cli, "A", "C")

    rows = listing(cli, "completion", "path", "A")

    assert [(r["position"], r["course"]) for r in rows] == [(-2, "B"), (-1, "C"), (0, "A")]


def test_disabled_instances_are_not_on_the_path(cli, site):
    for name in ("A", "B"):
        site.course(name)
    site.session.commit()
    ok(cli("method", "enable", "completion"))
    instance = ok(cli("instance", "add", "B", "completion", "source=A")).stdout.strip()
    ok(cli("instance", "update", instance, "enabled=off"))

    assert [r["course"] for r in listing(cli, "completion", "path", "A")] == ["A"]
    refused(cli("completion", "path", "NOPE"), "no course with shortname 'NOPE'")
