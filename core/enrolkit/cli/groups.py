"""Groups of a course, by hand."""

from __future__ import annotations

import click

from . import cli
from .output import emit, json_option, open_site


@cli.group()
def group():
    """Groups of a course: add, remove, list; members by hand."""


@group.command("add")
@click.argument("shortname", metavar="COURSE")
@click.argument("name")
@click.option("--idnumber", default="", help="An id for other systems.")
def group_add(shortname, name, idnumber):
    """Create a group in a course."""
    from .. import groups, lookup

    with open_site() as site:
        groups.add_group(site, lookup.course(site.session, shortname), name, idnumber)
    click.echo(f"group {name!r} added to {shortname}")


@group.command("remove")
@click.argument("shortname", metavar="COURSE")
@click.argument("name")
def group_remove(shortname, name):
    """Delete a group made by hand, and its memberships."""
    from .. import groups, lookup

    with open_site() as site:
        found = groups.find(site, lookup.course(site.session, shortname), name)
        count = groups.remove_group(site, found)
    click.echo(f"group {name!r} removed from {shortname} ({count} member(s))")


@group.command("list")
@click.argument("shortname", metavar="COURSE")
@json_option
def group_list(shortname, as_json):
    """The course's groups: name, idnumber, members, owner."""
    from .. import groups, lookup

    with open_site() as site:
        emit(groups.list_groups(site, lookup.course(site.session, shortname)), as_json)


@group.command("members")
@click.argument("shortname", metavar="COURSE")
@click.argument("name")
@json_option
def group_members(shortname, name, as_json):
    """The group's members and who added each (by hand, or a sync instance)."""
    from .. import groups, lookup

    with open_site() as site:
        found = groups.find(site, lookup.course(site.session, shortname), name)
        rows = groups.members(site, found)
    emit(rows, as_json, times=("timeadded",))


def _members_command(add: bool):
    @click.argument("shortname", metavar="COURSE")
    @click.argument("name")
    @click.argument("usernames", nargs=-1, required=True, metavar="USERNAME...")
    def command(shortname, name, usernames):
        from .. import groups, lookup

        with open_site() as site:
            found = groups.find(site, lookup.course(site.session, shortname), name)
            users = [lookup.user(site.session, username) for username in usernames]
            act = groups.add_members if add else groups.remove_members
            count = act(site, found, users)
        click.echo(f"{count} {'added to' if add else 'removed from'} group {name!r}")

    return command


group.command("enrol", help="Put enrolled users in a group by hand (no sync removes them).")(
    _members_command(True)
)
group.command("unenrol", help="Take users out of a group (refused where a sync owns them).")(
    _members_command(False)
)
