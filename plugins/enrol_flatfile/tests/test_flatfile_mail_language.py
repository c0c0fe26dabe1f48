"""The admins' mail about a file with rejected lines, received by a real SMTP server (aiosmtpd),
is written in each admin's language: their profile's, else the site's (``core/lang``)."""

from __future__ import annotations

import csv

import pytest
from enrol_flatfile.models import FlatfileReject
from enrolkit.testing import SiteFactory
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

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
    assert "  ligne 3 : utilisateur 'nobody' inconnu : add,nobody,MATH101,student" in body
    assert "applied" not in body and "rejected" not in body

    assert english["Subject"] == "Flat-file enrolment: 1 line(s) rejected in enrol.csv"
    assert "was applied with rejected lines." in english.get_body(("plain",)).get_content()


#: One line per reason a line is rejected; the last two quote values that look like formats.
BAD = (
    "operation,username,course,role,timestart,timeend\n"
    "add,ann,MATH101,student,,\n"
    "add,nobody,MATH101,student,,\n"
    "remove,ann,MATH101,student,,\n"
    "add,ann,NOPE,student,,\n"
    "add,ann,MATH101,student,tomorrow,\n"
    "add,ann,MATH101,student,2027-01-01,2026-12-31\n"
    "add,,MATH101,student,,\n"
    "add,ann,MATH101,student\n"
    "add,ann,MATH101,%(role)s,,\n"
    "add,{0}%s,MATH101,student,,\n"
    "add,ann,MATH101,student,1960-01-01,\n"
)
FRENCH = [
    "ligne 3 : utilisateur 'nobody' inconnu",
    "ligne 4 : opération 'remove' inconnue ; add ou del attendu",
    "ligne 5 : cours 'NOPE' inconnu",
    "ligne 6 : timestart : 'tomorrow' n'est pas une date ; indiquez des secondes Unix",
    "ligne 7 : timeend 2026-12-31T00:00:00Z est antérieur à timestart 2027-01-01T00:00:00Z",
    "ligne 8 : aucun utilisateur (username vide)",
    "ligne 9 : 6 champs attendus (operation,username,course,role,timestart,timeend), 4 trouvé(s)",
    "ligne 10 : rôle '%(role)s' inconnu (rôles utilisables dans les fichiers :",
    "ligne 11 : utilisateur '{0}%s' inconnu",
    "ligne 12 : timestart : '1960-01-01' est hors limites ; indiquez une date du 1970-01-01",
]
ENGLISH = [
    "line 3: unknown user 'nobody'",
    "line 4: unknown operation 'remove'; expected add or del",
    "line 5: unknown course 'NOPE'",
    "line 6: timestart: 'tomorrow' is not a time; give Unix seconds",
    "line 7: timeend 2026-12-31T00:00:00Z is before timestart 2027-01-01T00:00:00Z",
    "line 8: no user username",
    "line 9: expected 6 fields (operation,username,course,role,timestart,timeend), found 4",
    "line 10: unknown role '%(role)s' (roles files may use:",
    "line 11: unknown user '{0}%s'",
    "line 12: timestart: '1960-01-01' is out of range; give a time from 1970-01-01",
]


def test_rejected_lines_read_in_each_admins_language_and_the_report_in_the_sites(
    french_site, home, smtp, run_cron
):
    (home / "flatfile" / "enrol.csv").write_text(BAD)
    run_cron(force=True, runtime=french_site)
    run_cron(force=True, runtime=french_site)

    received = {message["To"]: message for message in smtp.messages}
    french = received["root@example.org"].get_body(("plain",)).get_content()
    english = received["ada@example.org"].get_body(("plain",)).get_content()
    for reason in FRENCH:
        assert reason in french
    for reason in ENGLISH:
        assert reason in english
    assert "unknown" not in french and "inconnu" not in english

    # The report beside the file is one language for all who open it: the site's.
    with (home / "flatfile" / "enrol.csv.errors.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["line", "reason", "original_line"]
    assert rows[1][:2] == ["3", "utilisateur 'nobody' inconnu"]
    assert rows[3][:2] == ["5", "cours 'NOPE' inconnu"]
    assert rows[9][:2] == ["11", "utilisateur '{0}%s' inconnu"]


def test_a_long_value_is_clipped_inside_a_french_reason(french_site, home, smtp, run_cron):
    (home / "flatfile" / "enrol.csv").write_text(
        "operation,username,course,role\nadd,ann,MATH101," + "r" * 5000 + "\n"
    )
    run_cron(force=True, runtime=french_site)
    run_cron(force=True, runtime=french_site)
    french = {m["To"]: m for m in smtp.messages}["root@example.org"]
    body = french.get_body(("plain",)).get_content()
    reason = body[body.index("ligne 2 : ") :].split(" : add,ann")[0]
    assert reason.startswith("ligne 2 : rôle 'rrr")
    assert "'... (4880 caractères de plus) inconnu (rôles utilisables" in reason
    assert "r" * 121 not in reason


def test_a_reason_stored_as_plain_english_before_is_read_as_it_is(french_site):
    """Rows written before reasons were kept as message ids read back unchanged."""
    with french_site.site() as site, site.atomic():
        from enrol_flatfile.models import FlatfileFile

        journal = FlatfileFile(name="old.csv", size=1, mtime_ns=1, sha256="0" * 64)
        site.session.add(journal)
        site.session.flush()
        plain = Table(
            FlatfileReject.__tablename__, MetaData(), Column("file_id", Integer),
            Column("line", Integer), Column("reason"), Column("text"),
        )  # fmt: skip
        site.session.execute(
            insert(plain).values(file_id=journal.id, line=2, reason="unknown user 'x'", text="t")
        )
        reason = site.session.scalar(select(FlatfileReject.reason))
    assert reason == "unknown user 'x'" and type(reason) is str


def test_a_header_naming_unknown_columns_is_mailed_in_french(french_site, home, smtp, run_cron):
    (home / "flatfile" / "bad.csv").write_text("operation,username,course,role,groupe\n")
    run_cron(force=True, runtime=french_site, check=False)  # the task fails: nothing applied
    run_cron(force=True, runtime=french_site, check=False)
    received = {message["To"]: message for message in smtp.messages}
    french = received["root@example.org"].get_body(("plain",)).get_content()
    english = received["ada@example.org"].get_body(("plain",)).get_content()
    assert "bad.csv:1 : colonne(s) 'groupe' inconnue(s) dans l'en-tête ; colonnes connues" in french
    assert "bad.csv:1: unknown column(s) 'groupe' in the header; known columns" in english
