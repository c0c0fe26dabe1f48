"""A non-editable install carries its data files: migrations, templates."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_core_wheel_contains_migrations_and_templates(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, cwd=tmp_path,
    )
    wheel = next(tmp_path.glob("enrolkit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "enrolkit/migrations/env.py" in names
    assert "enrolkit/migrations/script.py.mako" in names
    assert any(n.startswith("enrolkit/migrations/versions/0001_") for n in names)
    assert "enrolkit/web/templates/base.html" in names
    assert "enrolkit/web/static/style.css" in names
    assert "enrolkit/web/translations/fr/LC_MESSAGES/messages.mo" in names
    assert not any("/tests/" in n or n.startswith("tests/") for n in names)
