"""The admins' mail about a file with rejected lines, received by a real SMTP server (aiosmtpd),
is written in each admin's language: their profile's, else the site's (``core/lang``)."""

from __future__ import annotations

import pytest
from enrolkit.testing import SiteFactory

FILE = "operation,username,course,role\nadd,ann,MATH101,student\nadd,nobody,MATH101,student\n"


@pytest.fixture
def french_site(any_db, make_runtime, home, clock):
    """A site speaking French, flat files on, one admin without a language, one in English."""
    runtime = make_runtime(url=any_db, entry_points=True)
    with runtime.site() as raw:
        site = SiteFactory(raw)
        with site.atomic():
            site.set_method_enabled("flatfile", True)
            site.set_config("core", "lang", "fr")
            site.user("root", siteadmin=True, email="root@example.org", lang="")
            site.user("ada", siteadmin=True, email="ada@example.org", lang="en")
            site.user("ann")
            site.course("MATH101")
    return runtime


def test_the_report_mail_is_in_the_site_language_or_the_admins_own(
    french_site, home, smtp, run_cron
):
    (home / "flatfile" / "enrol.csv").write_text(FILE)
    run_cron(force=True, runtime=french_site)  # the flat-file task applies it, queues the mail
    run_cron(force=True, runtime=french_site)  # the delivery task sends it

    received = {message["To"]: message for message in smtp.messages}
    french, english = received["root@example.org"], received["ada@example.org"]
    assert (
        french["Subject"] == "Inscription par fichier plat : 1 ligne(s) rejetée(s) dans enrol.csv"
    )
    body = french.get_body(("plain",)).get_content()
    assert "Le fichier d'inscriptions enrol.csv du dossier" in body
    assert "a été appliqué avec des lignes rejetées." in body
    assert "Lignes rejetées (toutes figurent dans" in body
    assert "  ligne 3 : unknown user 'nobody' : add,nobody,MATH101,student" in body
    assert "applied" not in body and "rejected" not in body

    assert english["Subject"] == "Flat-file enrolment: 1 line(s) rejected in enrol.csv"
    assert "was applied with rejected lines." in english.get_body(("plain",)).get_content()
