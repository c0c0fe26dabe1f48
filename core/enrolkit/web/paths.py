"""The learning path around a course, laid out for an SVG picture.

Completion instances link courses: an instance in course B whose ``source`` setting names course
A (by shortname or id) enrols A's completers in B, an arrow A -> B. The picture shows every course
connected to the one asked about, in columns by how many steps lead to it, so a chain A -> B -> C
reads left to right. Read straight from the instances, so it needs nothing from the completion
plugin but its data.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from sqlalchemy import select

from ..models import Course, EnrolInstance
from ..site import Site

METHOD = "completion"
#: Courses shown at most; a larger network is cut (and the picture says so).
MAX_COURSES = 200
BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 180, 52, 70, 24, 12


@dataclass(frozen=True)
class Box:
    course: Course
    x: int
    y: int
    current: bool


@dataclass(frozen=True)
class Arrow:
    x1: int
    y1: int
    x2: int
    y2: int
    enabled: bool


@dataclass(frozen=True)
class Picture:
    boxes: list[Box]
    arrows: list[Arrow]
    width: int
    height: int
    truncated: bool


def _edges(site: Site) -> list[tuple[int, int, bool]]:
    """(source course id, target course id, instance enabled) for every completion instance."""
    rows = site.session.execute(
        select(EnrolInstance.course_id, EnrolInstance.settings, EnrolInstance.enabled).where(
            EnrolInstance.method == METHOD
        )
    ).all()
    names = {str((settings or {}).get("source", "")).strip() for _c, settings, _e in rows}
    by_name = dict(
        site.session.execute(
            select(Course.shortname, Course.id).where(Course.shortname.in_(names - {""}))
        ).all()
    )
    edges = []
    for target, settings, enabled in rows:
        source = str((settings or {}).get("source", "")).strip()
        source_id = by_name.get(source)
        if source_id is None and source.isdigit():
            source_id = int(source)
        if source_id is not None:
            edges.append((source_id, target, bool(enabled)))
    return edges


def picture(site: Site, course: Course) -> Picture:
    edges = _edges(site)
    neighbours: dict[int, set[int]] = defaultdict(set)
    for source, target, _enabled in edges:
        neighbours[source].add(target)
        neighbours[target].add(source)
    seen, queue = {course.id}, deque([course.id])
    while queue and len(seen) < MAX_COURSES:
        for other in sorted(neighbours[queue.popleft()]):
            if other not in seen and len(seen) < MAX_COURSES:
                seen.add(other)
                queue.append(other)
    truncated = bool(queue)
    inside = [(s, t, e) for s, t, e in edges if s in seen and t in seen and s != t]
    depth = _depths(seen, inside)
    courses = {
        c.id: c for c in site.session.scalars(select(Course).where(Course.id.in_(list(seen))))
    }
    columns: dict[int, list[Course]] = defaultdict(list)
    for course_id in seen:
        if course_id in courses:
            columns[depth[course_id]].append(courses[course_id])
    places: dict[int, tuple[int, int]] = {}
    boxes = []
    for column, members in sorted(columns.items()):
        for row, member in enumerate(sorted(members, key=lambda c: c.shortname)):
            x = MARGIN + column * (BOX_W + GAP_X)
            y = MARGIN + row * (BOX_H + GAP_Y)
            places[member.id] = (x, y)
            boxes.append(Box(member, x, y, member.id == course.id))
    arrows = [_arrow(places[s], places[t], e) for s, t, e in inside if s in places and t in places]
    width = MARGIN * 2 + max(len(columns), 1) * (BOX_W + GAP_X) - GAP_X
    rows = max((len(m) for m in columns.values()), default=1)
    height = MARGIN * 2 + rows * (BOX_H + GAP_Y) - GAP_Y
    return Picture(boxes, arrows, width, height, truncated)


def _depths(nodes: set[int], edges: list[tuple[int, int, bool]]) -> dict[int, int]:
    """The longest chain of links leading to each course; a cycle stops growing after as many
    rounds as there are courses, so a loop A -> B -> A still draws."""
    depth = dict.fromkeys(nodes, 0)
    for _round in range(len(nodes)):
        changed = False
        for source, target, _enabled in edges:
            if depth[target] < depth[source] + 1 and depth[source] + 1 < len(nodes):
                depth[target] = depth[source] + 1
                changed = True
        if not changed:
            break
    return depth


def _arrow(start: tuple[int, int], end: tuple[int, int], enabled: bool) -> Arrow:
    (sx, sy), (ex, ey) = start, end
    if ex > sx:  # left to right: from the right edge to the left edge
        return Arrow(sx + BOX_W, sy + BOX_H // 2, ex, ey + BOX_H // 2, enabled)
    if ex < sx:  # a link back (a loop)
        return Arrow(sx, sy + BOX_H // 2, ex + BOX_W, ey + BOX_H // 2, enabled)
    below = ey > sy  # same column: from bottom edge to top edge
    return Arrow(
        sx + BOX_W // 2,
        sy + (BOX_H if below else 0),
        ex + BOX_W // 2,
        ey + (0 if below else BOX_H),
        enabled,
    )
