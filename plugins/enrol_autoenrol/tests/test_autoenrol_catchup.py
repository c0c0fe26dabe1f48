"""Who the auto-enrol methods reach, and when (issue 16): login mode enrols at login; the hourly
task catches up on everyone who has logged in and matches, a login whose enrolment work was lost
included (issue 18: a node killed during it); people who never logged in are left alone until
their first login, as in Moodle."""

from __future__ import annotations

import enrol_autoenrol
import pytest
from autoenrol_helpers import active, profile, rule
from enrol_autoenrol.tasks import process_enrolments
from enrolkit import hookimpl
from enrolkit.models import User
from enrolkit.people import login
from enrolkit.testing import SiteFactory

MARKETING = rule({"op": "&", "c": [profile("department", "Marketing")]})


class NodeDies:
    """Stands for the node dying during the login's enrolment work: the work is lost."""

    @hookimpl
    def on_login(self, site, user):
        raise RuntimeError("the node died")


@pytest.fixture
def dying(any_db, make_runtime):
    runtime = make_runtime(plugins=(enrol_autoenrol, NodeDies()), url=any_db)
    with runtime.site() as site:
        with site.atomic():
            site.set_method_enabled("autoenrol", True)
        yield SiteFactory(site)


def test_a_login_whose_enrolment_work_was_lost_is_caught_up_by_the_hourly_task(dying, clock):
    course = dying.course("MKT")
    ann = dying.user("ann", department="Marketing")
    dying.instance(course, "autoenrol", mode="login", rule=MARKETING)
    dying.site.session.commit()
    with pytest.raises(RuntimeError, match="the node died"):
        login(dying.site, ann)
    dying.site.session.rollback()
    assert dying.site.session.get(User, ann.id).lastlogin == clock.now()  # the login stayed
    assert active(dying, course) == set()
    assert process_enrolments(dying.site).startswith("1 user(s) enrolled")
    assert active(dying, course) == {"ann"}


def test_a_new_login_mode_instance_waits_for_people_who_never_logged_in(ae, clock):
    course = ae.course("MKT")
    ae.user("ann", department="Marketing", lastlogin=clock.now() - 3600)
    bob = ae.user("bob", department="Marketing")  # never logged in
    ae.instance(course, "autoenrol", mode="login", rule=MARKETING)
    process_enrolments(ae.site)
    assert active(ae, course) == {"ann"}  # the hourly task: who has logged in and matches
    login(ae.site, bob)
    assert active(ae, course) == {"ann", "bob"}  # bob: at his first login
