"""An API refusal names where to act, never a command line (the CLI adds its command)."""

from __future__ import annotations

from enrolkit.enrolments import add_instance


def test_a_refused_unenrol_has_no_command_line(api, api_runtime, world):
    with api_runtime.site() as site:
        site.set_method_enabled("cohort", True)
        add_instance(site, site.session.merge(world.maths), "cohort", {"cohort": "promo"})
    response = api.delete("/courses/MATH101/enrolments/ann")
    assert response.status_code == 409
    message = response.get_json()["message"]
    assert "the enrolment comes from the cohort promo" in message
    assert "remove the user from the cohort instead" in message
    assert "enrolkit" not in message and "USERNAME" not in message
