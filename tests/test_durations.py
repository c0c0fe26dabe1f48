"""One duration field for every setting that is a length of time: typed as seconds, ``30m``,
``12h``, ``2d``, ``1w`` or ISO 8601 (``P2D``) on the command line and through the API, stored as
seconds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from enrolkit.fields import compact_duration, duration_words, parse_duration

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


@pytest.mark.parametrize(
    ("typed", "seconds"),
    [("30m", 1800), ("12h", 43200), ("2d", 172800), ("1w", 604800), ("P2D", 172800),
     ("PT12H", 43200), ("p1w", 604800), ("1d12h", 129600), ("86400", 86400), (3600, 3600),
     ("", 0)],
)  # fmt: skip
def test_durations_people_type(typed, seconds):
    assert parse_duration(typed) == seconds
    assert parse_duration(compact_duration(seconds)) == seconds


@pytest.mark.parametrize("typed", ["2x", "P1M", "-5", "2 days please", "P", "1y"])
def test_a_bad_duration_says_what_to_type(typed):
    with pytest.raises(ValueError, match="delay: .* is not a duration; give seconds, 30m, 12h"):
        parse_duration(typed, field="delay")


def test_durations_read_back_in_the_readers_language():
    assert duration_words(172800, "fr").replace("\xa0", " ") == "2 jours"
    assert duration_words(172800, "en") == "2 days"
    assert duration_words(129600, "fr").replace("\xa0", " ") == "1 jour et 12 heures"


def test_the_cli_takes_2d_and_iso_8601(tmp_path):
    pytest.importorskip("enrol_completion")
    environ = {**os.environ, "ENROLKIT_HOME": str(tmp_path / "home")}
    environ.pop("ENROLKIT_DATABASE_URL", None)

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ENROLKIT, *args], capture_output=True, text=True, env=environ, timeout=120,
            input=input,
        )  # fmt: skip

    for args in (("db", "upgrade"), ("method", "enable", "completion")):
        done = run(*args)
        assert done.returncode == 0, done.stderr
    courses = tmp_path / "courses.csv"
    courses.write_text("shortname,fullname\nA,Course A\nB,Course B\n")
    done = run("course", "import", str(courses))
    assert done.returncode == 0, done.stderr
    added = run("instance", "add", "B", "completion", "source=A", "delay=2d", "duration=P1W")
    assert added.returncode == 0, added.stderr
    rows = json.loads(run("instance", "list", "B", "--json").stdout)
    settings = next(row for row in rows if row["method"] == "completion")["settings"]
    assert (settings["delay"], settings["duration"]) == (172800, 604800)
    refused = run("instance", "add", "B", "completion", "source=A", "delay=2 days")
    assert refused.returncode != 0
    assert "delay: '2days' is not a duration; give seconds, 30m" in refused.stderr
    assert "Traceback" not in refused.stderr
