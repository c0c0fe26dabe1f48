"""The completion tests' site: only this plugin, on each database backend."""

from __future__ import annotations

import enrol_completion
import pytest
from enrolkit.testing import SiteFactory


@pytest.fixture
def completion_site(any_db, make_runtime):
    """A ``site`` with the completion method installed and enabled, on SQLite and PostgreSQL."""
    runtime = make_runtime(plugins=(enrol_completion,), url=any_db)
    with runtime.site() as site:
        with site.atomic():
            site.set_method_enabled("completion", True)
        yield SiteFactory(site)
