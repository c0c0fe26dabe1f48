"""Machine-readable benchmark figures, and the RESULTS.md section rendered from them.

A benchmark calls :func:`record` for each figure it prints. When ``ENROLKIT_BENCH_RESULTS`` names a
file (``run_all.py`` sets it), the figure is appended to it as one JSON line; otherwise nothing is
written, so the scripts run alone as before. ``run_all.py`` then renders every record into the
generated section of ``benchmarks/RESULTS.md``: between :data:`BEGIN` and :data:`END`, which it
replaces (the hand-written sections around them are kept as they are).

Figures are named by what they measure, with their sizes (``flat file, 100,000 lines / 1,000
courses``), so a figure meets or misses issue 15's aim (:data:`AIMS`) only at the issue's sizes: a
``--quick`` run shows its figures without aims.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

ENV = "ENROLKIT_BENCH_RESULTS"
BEGIN = "<!-- make bench: generated section, begin (rewritten by benchmarks/run_all.py) -->"
END = "<!-- make bench: generated section, end -->"
BACKENDS = ("sqlite", "postgresql")
TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}

#: Issue 15's aims, per figure and backend: (comparison, limit). Units are the figure's own.
AIMS: dict[str, dict[str, tuple[str, float]]] = {
    "flat file, 100,000 lines / 1,000 courses": {"sqlite": ("<=", 4), "postgresql": ("<=", 5)},
    "flat file, 100,000 lines / 1,000 courses: vs set-based": {
        "sqlite": ("<=", 2.5),
        "postgresql": ("<=", 3),
    },
    "first full sync, 1,000 instances / 100,000 enrolments": {
        "sqlite": ("<=", 3),
        "postgresql": ("<=", 5),
    },
    "flat file, 100,000 lines / 1,000 courses: times faster than Moodle (about 570 s)": {
        "postgresql": (">=", 100),
    },
    "cohort of 100,000 added to a course": {"sqlite": ("<=", 2), "postgresql": ("<=", 4)},
    "first login enrolling into 20 of 10,000 instances, median": {
        "sqlite": ("<=", 15),
        "postgresql": ("<=", 25),
    },
    "hourly auto-enrol, 100,000 users x 100 instances, first run": {
        "sqlite": ("<=", 5),
        "postgresql": ("<=", 10),
    },
    "growth, 10,000-member cohort sync, empty -> 1,000,000 enrolments": {
        "sqlite": ("<=", 1.5),
        "postgresql": ("<=", 1.5),
    },
    "growth, 10,000-line flat file, empty -> 1,000,000 enrolments": {
        "sqlite": ("<=", 1.5),
        "postgresql": ("<=", 1.5),
    },
    "flat file peak memory, 1,000,000 vs 100,000 lines": {
        "sqlite": ("<=", 1.2),
        "postgresql": ("<=", 1.2),
    },
}

UNITS = {"s": "{:,.2f} s", "ms": "{:,.1f} ms", "x": "{:,.2f}x", "MB": "{:,.0f} MB"}


def record(bench: str, figure: str, backend: str, value: float, unit: str) -> None:
    """Keep one figure (``unit``: s, ms, x or MB) for RESULTS.md, when a run collects them."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}: use one of {', '.join(UNITS)}")
    path = os.environ.get(ENV)
    if not path:
        return
    line = {"bench": bench, "figure": figure, "backend": backend, "value": value, "unit": unit}
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(line) + "\n")


def load(path: Path) -> list[dict]:
    """The records of a run, in the order they were made."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def render(records: Iterable[dict], context: dict) -> str:
    """The generated section: how and where the run was made, then one table row per figure
    with its value on each backend and the aim beside it. ``context`` holds ``date``,
    ``command``, ``commit``, ``cores``, ``memory_gib``, ``load_start``, ``load_end``, ``python``,
    ``sqlite``, ``postgresql`` (or None), ``minutes`` and ``failures`` (lines)."""
    rows: dict[tuple[str, str], dict[str, dict]] = {}
    for item in records:  # a figure measured twice keeps its last value
        rows.setdefault((item["bench"], item["figure"]), {})[item["backend"]] = item
    postgres = context.get("postgresql") or "not run"
    lines = [
        BEGIN,
        f"## make bench ({context['date']})",
        "",
        f"`{context['command']}` at {context['commit']}, {context['minutes']:.0f} min. Machine: "
        f"{context['cores']} cores, {context['memory_gib']:.1f} GiB of memory, load average "
        f"{context['load_start']:.2f} at the start and {context['load_end']:.2f} at the end. "
        f"Python {context['python']}, SQLite {context['sqlite']}, PostgreSQL {postgres}.",
        "",
        "*vs raw*: the figure over one executemany of the same enrolments and role assignments "
        "(no log); *vs set-based*: over the set-based write of the same rows, log rows included "
        "(one INSERT ... SELECT per table; for a file, COPY on PostgreSQL and executemany on "
        "SQLite). Aims are issue 15's, shown at the issue's sizes only.",
        "",
    ]
    lines += [f"- **failed:** {failure}" for failure in context.get("failures", [])]
    if context.get("failures"):
        lines.append("")
    lines += [
        "| benchmark | figure | SQLite | aim | PostgreSQL | aim |",
        "|---|---|--:|---|--:|---|",
    ]
    for (bench, figure), by_backend in rows.items():
        cells = [bench, figure]
        for name in BACKENDS:
            item = by_backend.get(name)
            cells.append(UNITS[item["unit"]].format(item["value"]) if item else "—")
            cells.append(_aim(figure, name, item))
        lines.append("| " + " | ".join(cells) + " |")
    if not rows:
        lines.append("| (no figures) | | | | | |")
    measured = {figure for _, figure in rows}
    missing = [figure for figure in AIMS if figure not in measured]
    if missing:
        lines += ["", "Aims of issue 15 not measured by this run (other sizes, or a failure): "
                  + "; ".join(missing) + "."]  # fmt: skip
    lines += ["", END]
    return "\n".join(lines) + "\n"


def _aim(figure: str, backend: str, item: dict | None) -> str:
    aim = AIMS.get(figure, {}).get(backend)
    if not aim:
        return ""
    comparison, limit = aim
    unit = UNITS[item["unit"]] if item else "{:g}"
    text = ("≤ " if comparison == "<=" else "≥ ") + unit.format(limit)
    if not item:
        return text
    met = item["value"] <= limit if comparison == "<=" else item["value"] >= limit
    return f"{text}: met" if met else f"{text}: **not met**"


def splice(document: str, section: str) -> str:
    """``document`` with its generated section replaced by ``section`` (put after the title's
    paragraph, before the hand-written sections, the first time)."""
    if BEGIN in document and END in document:
        head, rest = document.split(BEGIN, 1)
        return head + section.rstrip("\n") + rest.split(END, 1)[1]
    first = document.find("\n## ")
    if first < 0:
        return document.rstrip("\n") + "\n\n" + section
    return document[: first + 1] + section + "\n" + document[first + 1 :]
