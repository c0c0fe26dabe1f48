"""The auto-enrol tests' site: only this plugin, enabled, on each database backend."""

from __future__ import annotations

import enrol_autoenrol
import pytest
from enrolkit.testing import SiteFactory


@pytest.fixture
def ae(any_db, make_runtime):
    """A ``site`` with auto-enrol installed and enabled, on SQLite (and PostgreSQL when
    ENROLKIT_TEST_POSTGRES_URL is set)."""
    runtime = make_runtime(plugins=(enrol_autoenrol,), url=any_db)
    with runtime.site() as site:
        with site.atomic():
            site.set_method_enabled("autoenrol", True)
        yield SiteFactory(site)
