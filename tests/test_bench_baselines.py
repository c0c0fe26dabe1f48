"""benchmarks/_support.py: the baselines write again exactly the rows an engine apply wrote."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from enrolkit.engine import Plan
from enrolkit.models import ACTIVE, Role, User
from enrolkit.testing import SiteFactory
from sqlalchemy import func, literal, null, select, text

SUPPORT = Path(__file__).resolve().parents[1] / "benchmarks" / "_support.py"


@pytest.fixture(scope="module")
def support():
    spec = importlib.util.spec_from_file_location("bench_support", SUPPORT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_both_baselines_write_the_enrolments_roles_and_log_rows_of_an_apply(
    support, any_db, make_runtime
):
    runtime = make_runtime(url=any_db)
    baselines = support.Baselines(runtime.db)
    with runtime.site() as site:
        factory = SiteFactory(site)
        factory.users(20)
        instance = factory.instance(factory.course("C"), "manual")
        student = site.session.scalar(select(Role.id).where(Role.shortname == "student"))
        site.session.commit()
        mark = baselines.mark()
        desired = select(
            User.id.label("user_id"),
            literal(student).label("role_id"),
            literal(0).label("timestart"),
            literal(0).label("timeend"),
            literal(ACTIVE).label("status"),
            null().label("group_id"),
        )
        outcome = site.engine.apply(Plan(instance.id, reason="benchmark", desired=desired))
        assert len(outcome.enrolled) == 20
        site.session.commit()

    from_database = baselines.measure(mark)
    from_file = baselines.measure(mark, from_file=True)

    written = {"user_enrolments": 20, "role_assignments": 20, "log": 40}
    assert from_database.rows == written and from_file.rows == written
    assert from_database.set_kind == "INSERT ... SELECT"
    postgres = any_db.startswith("postgresql")
    assert from_file.set_kind == ("COPY" if postgres else "executemany, all tables")
    assert from_database.raw > 0 and from_database.set > 0 and from_file.set > 0
    with runtime.db.connect() as conn:  # the copies are left empty, the real tables untouched
        assert conn.scalar(text("SELECT COUNT(*) FROM baseline_log")) == 0
        assert conn.scalar(select(func.count()).select_from(User)) == 20
        assert conn.scalar(text("SELECT COUNT(*) FROM user_enrolments")) == 20
