"""benchmarks/_results.py: the records a benchmark keeps and the RESULTS.md section made of them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "_results.py"


@pytest.fixture(scope="module")
def results():
    spec = importlib.util.spec_from_file_location("bench_results", RESULTS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONTEXT = {
    "date": "2026-12-03 19:00 UTC",
    "command": "make bench",
    "commit": "abc1234",
    "minutes": 42.4,
    "cores": 2,
    "memory_gib": 23.5,
    "load_start": 0.14,
    "load_end": 3.5,
    "python": "3.11.7",
    "sqlite": "3.40.1",
    "postgresql": "15.18",
    "failures": [],
}


def test_figures_become_one_row_each_with_both_backends_and_the_aims(
    results, tmp_path, monkeypatch
):
    monkeypatch.setenv(results.ENV, str(tmp_path / "records.jsonl"))
    figure = "flat file, 100,000 lines / 1,000 courses"
    results.record("bench_flatfile", figure, "sqlite", 3.21, "s")
    results.record("bench_flatfile", figure, "postgresql", 7.5, "s")
    results.record("bench_flatfile", f"{figure}: vs set-based", "sqlite", 2.04, "x")
    results.record("bench_flatfile", f"{figure}: peak memory", "postgresql", 181.4, "MB")
    results.record("bench_growth", "1,000-member cohort sync, no enrolment", "sqlite", 0.04, "s")

    section = results.render(results.load(tmp_path / "records.jsonl"), CONTEXT)

    lines = section.splitlines()
    assert lines[0] == results.BEGIN and lines[-1] == results.END
    assert "## make bench (2026-12-03 19:00 UTC)" in lines
    assert (
        "`make bench` at abc1234, 42 min. Machine: 2 cores, 23.5 GiB of memory, load average 0.14"
        " at the start and 3.50 at the end. Python 3.11.7, SQLite 3.40.1, PostgreSQL 15.18."
    ) in lines
    table = lines[lines.index("| benchmark | figure | SQLite | aim | PostgreSQL | aim |") :]
    assert table[2:7] == [
        "| bench_flatfile | flat file, 100,000 lines / 1,000 courses | 3.21 s | ≤ 4.00 s: met"
        " | 7.50 s | ≤ 5.00 s: **not met** |",
        "| bench_flatfile | flat file, 100,000 lines / 1,000 courses: vs set-based | 2.04x"
        " | ≤ 2.50x: met | — | ≤ 3 |",
        "| bench_flatfile | flat file, 100,000 lines / 1,000 courses: peak memory | — |  | 181 MB |  |",
        "| bench_growth | 1,000-member cohort sync, no enrolment | 0.04 s |  | — |  |",
        "",
    ]
    # The other aims are named, so a run that missed one says so.
    [missing] = [line for line in lines if line.startswith("Aims of issue 15 not measured")]
    assert "cohort of 100,000 added to a course;" in missing
    assert "flat file, 100,000 lines / 1,000 courses;" not in missing


def test_a_failed_script_and_a_run_without_postgresql_are_said(results):
    context = {**CONTEXT, "postgresql": None, "failures": ["bench_sync.py exited with status 1"]}
    section = results.render([], context)
    assert "PostgreSQL not run." in section
    assert "- **failed:** bench_sync.py exited with status 1" in section.splitlines()
    assert "| (no figures) | | | | | |" in section.splitlines()


def test_without_the_variable_nothing_is_written(results, tmp_path, monkeypatch):
    monkeypatch.delenv(results.ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    results.record("bench_engine", "no-op", "sqlite", 0.1, "s")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unknown unit 'sec'"):
        results.record("bench_engine", "no-op", "sqlite", 0.1, "sec")


def test_the_generated_section_is_replaced_and_the_hand_written_ones_kept(results):
    document = "# Benchmark results\n\nIntro.\n\n## bench_load.py\n\nHand-written.\n"
    first = results.splice(document, results.render([], CONTEXT))
    assert first.startswith("# Benchmark results\n\nIntro.\n\n" + results.BEGIN)
    assert first.endswith(results.END + "\n\n## bench_load.py\n\nHand-written.\n")

    later = {**CONTEXT, "date": "2026-12-04 08:00 UTC"}
    second = results.splice(first, results.render([], later))
    assert "2026-12-03 19:00 UTC" not in second and "2026-12-04 08:00 UTC" in second
    assert second.count(results.BEGIN) == 1
    assert second.endswith(results.END + "\n\n## bench_load.py\n\nHand-written.\n")


def test_records_are_json_lines_in_the_order_made(results, tmp_path, monkeypatch):
    path = tmp_path / "records.jsonl"
    monkeypatch.setenv(results.ENV, str(path))
    results.record("bench_engine", "a", "sqlite", 1.5, "s")
    results.record("bench_engine", "a", "postgresql", 2.5, "s")
    assert [json.loads(line)["backend"] for line in path.read_text().splitlines()] == [
        "sqlite",
        "postgresql",
    ]
    assert results.load(path)[1] == {
        "bench": "bench_engine",
        "figure": "a",
        "backend": "postgresql",
        "value": 2.5,
        "unit": "s",
    }
