"""The learning path through a course: the courses whose completion leads to it and those its
completion leads to, following enabled completion instances (A -> B -> C) both ways."""

from __future__ import annotations

from collections import defaultdict

from enrolkit.models import Course
from enrolkit.site import Site
from sqlalchemy import select

from . import sources


def learning_path(site: Site, course: Course) -> list[dict]:
    """One row per course on the path, in order: ``position`` is 0 for ``course``, -n for a
    course n completions before it, +n for one n completions after it. ``requires`` lists the
    courses whose completion enrols in that course (any one suffices), ``leads_to`` the courses
    its completion enrols in. A cycle stops where it comes back."""
    before: dict[int, set[int]] = defaultdict(set)
    after: dict[int, set[int]] = defaultdict(set)
    for source, target in sources.links(site):
        if source != target:
            before[target].add(source)
            after[source].add(target)
    position = {course.id: 0}
    for step, graph in ((-1, before), (1, after)):
        frontier, depth = [course.id], 0
        while frontier:
            depth += 1
            reached = []
            for current in frontier:
                for other in sorted(graph[current] - position.keys()):
                    position[other] = step * depth
                    reached.append(other)
            frontier = reached
    shown = set(position)
    for course_id in position:
        shown |= before[course_id] | after[course_id]
    found = site.session.execute(
        select(Course.id, Course.shortname, Course.fullname).where(Course.id.in_(shown))
    ).all()
    names = {course_id: shortname for course_id, shortname, _full in found}
    fullnames = {course_id: fullname for course_id, _short, fullname in found}
    rows = [
        {
            "position": where,
            "course": names[course_id],
            "fullname": fullnames[course_id],
            "requires": sorted(names[c] for c in before[course_id]),
            "leads_to": sorted(names[c] for c in after[course_id]),
        }
        for course_id, where in position.items()
    ]
    return sorted(rows, key=lambda row: (row["position"], row["course"]))
