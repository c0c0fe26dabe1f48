"""People: users, cohorts, role assignments, badges."""

from __future__ import annotations

import sys

import click

from . import cli, fail
from .output import open_site


def report_import(kind: str, created: int, updated: int, errors) -> None:
    for error in errors:
        click.echo(f"rejected {error}", err=True)
    click.echo(f"{kind}: {created} created, {updated} updated, {len(errors)} rejected")
    if errors:
        sys.exit(2)


strict_option = click.option(
    "--strict", is_flag=True, help="Apply nothing if any row is bad (default: apply good rows)."
)


@cli.group()
def user():
    """Users and profiles."""


@user.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@strict_option
def user_import(file, strict):
    """Create or update users from CSV: username,email,firstname,lastname[,idnumber,auth,lang,
    department,institution,city,country,suspended,profile_field_<shortname>...]."""
    from .. import people

    with open_site() as site:
        report_import("users", *people.import_users(site, file, strict=strict))


@user.command("set")
@click.argument("username")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
def user_set(username, assignments):
    """Change profile fields (fires the profile-changed hook)."""
    from .. import lookup, people
    from ..enrolments import parse_settings

    with open_site() as site:
        changed = people.set_fields(
            site, lookup.user(site.session, username), parse_settings(assignments)
        )
        click.echo(f"{username}: {', '.join(changed) if changed else 'nothing changed'}")


@user.command("login")
@click.argument("username")
def user_login(username):
    """Record a site login (fires on_login)."""
    from .. import lookup, people

    with open_site() as site:
        people.login(site, lookup.user(site.session, username))
        click.echo(f"{username} logged in")


@user.command("passwd")
@click.argument("username")
def user_passwd(username):
    """Set a password read from stdin (first line)."""
    from .. import lookup, people

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        fail("no password on stdin; e.g. echo 'secret-pass' | enrolkit user passwd USERNAME")
    with open_site() as site, site.atomic():
        people.set_password(lookup.user(site.session, username), password)
    click.echo(f"password set for {username}")


@cli.group()
def cohort():
    """Cohorts and their members."""


@cohort.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@strict_option
def cohort_import(file, strict):
    """Create or update cohorts from CSV: idnumber,name[,category,description]."""
    from .. import cohorts

    with open_site() as site:
        report_import("cohorts", *cohorts.import_cohorts(site, file, strict=strict))


@cohort.command("add")
@click.argument("idnumber")
@click.argument("usernames", nargs=-1, required=True)
def cohort_add(idnumber, usernames):
    """Add users to a cohort (fires cohort_members_changed once)."""
    from .. import cohorts, lookup

    with open_site() as site:
        found, users = lookup.cohort_and_users(site.session, idnumber, usernames)
        added = cohorts.add_members(site, found, users)
        click.echo(f"{idnumber}: {len(added)} added")


@cohort.command("remove")
@click.argument("idnumber")
@click.argument("usernames", nargs=-1, required=True)
def cohort_remove(idnumber, usernames):
    """Remove users from a cohort."""
    from .. import cohorts, lookup

    with open_site() as site:
        found, users = lookup.cohort_and_users(site.session, idnumber, usernames)
        removed = cohorts.remove_members(site, found, users)
        click.echo(f"{idnumber}: {len(removed)} removed")


@cohort.command("delete")
@click.argument("idnumber")
def cohort_delete(idnumber):
    """Delete a cohort (methods syncing it react through cohort_deleted)."""
    from .. import cohorts, lookup

    with open_site() as site:
        cohorts.delete_cohort(site, lookup.cohort(site.session, idnumber))
        click.echo(f"cohort {idnumber} deleted")


@cli.group()
def role():
    """Role assignments in the site, a category or a course."""


def _role_command(assign: bool):
    @click.argument("role_name", metavar="ROLE")
    @click.argument("username")
    @click.option("--category", metavar="PATH", help="Category path, 'Parent / Child'.")
    @click.option("--course", metavar="SHORTNAME")
    def command(role_name, username, category, course):
        from .. import lookup, roles

        with open_site() as site, site.atomic():
            level, instanceid = roles.context_of(site, category, course)
            found_role = lookup.role(site.session, role_name)
            found_user = lookup.user(site.session, username)
            act = roles.assign if assign else roles.unassign
            done = act(site, found_role, found_user, level, instanceid)
        where = category or course or "site"
        verb = "assigned" if assign else "unassigned"
        click.echo(f"{role_name} {verb if done else 'unchanged'} for {username} in {where}")

    return command


role.command("assign", help="Assign a role (fires role_assignments_changed).")(_role_command(True))
role.command("unassign", help="Remove a role assigned by hand.")(_role_command(False))


@cli.group()
def badge():
    """Badges."""


@badge.command("award")
@click.argument("name", metavar="BADGE")
@click.argument("username")
def badge_award(name, username):
    """Award a badge (created on first award)."""
    from .. import badges, lookup

    with open_site() as site:
        done = badges.award(site, name, lookup.user(site.session, username))
        click.echo(f"{name} {'awarded to' if done else 'already held by'} {username}")
