"""Issue 18 item 1: the scheduled cohort sync raced with cohort changes arriving through the API
and wrote wrong states: it re-enrolled users one second after the API removed them from the
cohort and unenrolled users who had just been added, because a plan read its source in one
statement and diffed and wrote in later ones, with nothing serialising two plans for the same
instance.

Here one node runs the cohort sync (the task run endpoint) on a cohort that drifted by
thousands of members, while the other node removes and adds members through the API, starting
at the same instant. Whatever the interleaving, the end state must be the cohort: every member
enrolled once with the instance's role, nobody else, and each API change logged once."""

from __future__ import annotations

import itertools
import threading

from concurrency_nodes import Cluster, factory, race
from enrolkit.models import CohortMember, LogEntry, RoleAssignment, User, UserEnrolment
from sqlalchemy import func, insert, select

#: Members added behind the hooks' back before each round, so the sync has a big plan to apply.
DRIFT = 1500
#: At most this many members the API removes, and users it adds, during each round's sync.
MOVES = 12
ROUNDS = 2
_rounds = itertools.count()


def state(cluster: Cluster, cohort_id: int, instance_id: int) -> tuple[set, set, set]:
    """(cohort members, enrolled users, users holding the instance's role)."""
    with cluster.site() as site:
        members = set(
            site.session.scalars(
                select(CohortMember.user_id).where(CohortMember.cohort_id == cohort_id)
            )
        )
        enrolled = set(
            site.session.scalars(
                select(UserEnrolment.user_id).where(UserEnrolment.instance_id == instance_id)
            )
        )
        roles = set(
            site.session.scalars(
                select(RoleAssignment.user_id).where(
                    RoleAssignment.component == "enrol_cohort",
                    RoleAssignment.itemid == instance_id,
                )
            )
        )
    return members, enrolled, roles


def last_log_id(cluster: Cluster) -> int:
    with cluster.site() as site:
        return site.session.scalar(select(func.max(LogEntry.id))) or 0


def events(
    cluster: Cluster, user_ids: list[int], instance_id: int, after: int
) -> dict[int, list[str]]:
    """Each user's enrolment events in the instance logged after log entry ``after``."""
    with cluster.site() as site:
        rows = site.session.execute(
            select(LogEntry.user_id, LogEntry.event)
            .where(
                LogEntry.id > after,
                LogEntry.user_id.in_(user_ids),
                LogEntry.event.in_(("user_enrolled", "user_unenrolled")),
                LogEntry.instance_id == instance_id,
            )
            .order_by(LogEntry.id)
        ).all()
    found: dict[int, list[str]] = {uid: [] for uid in user_ids}
    for user_id, event in rows:
        found[user_id].append(event)
    return found


def test_cohort_changes_through_the_api_during_a_cohort_sync_end_in_the_cohorts_state(cluster):
    with cluster.site() as site, site.atomic():
        f = factory(site)
        prefix = f"sy{next(_rounds)}"
        movers = f.users(MOVES * ROUNDS, prefix=prefix + "out")
        joiners = f.users(MOVES * ROUNDS, prefix=prefix + "in")
        cohort = f.cohort(prefix, members=movers)
        course = f.course(prefix.upper())
        instance = f.instance(course, "cohort", cohort=cohort.idnumber)
        cohort_id, idnumber, instance_id = cohort.id, cohort.idnumber, instance.id
        pairs = list(
            zip(
                [(u.id, u.username) for u in movers],
                [(u.id, u.username) for u in joiners],
                strict=True,
            )
        )
    for round_ in range(ROUNDS):
        _drift(cluster, cohort_id, f"{prefix}d{round_}")
        before = last_log_id(cluster)
        mine = pairs[round_ * MOVES : (round_ + 1) * MOVES]
        synced, answers, done = sync_during_changes(cluster, idnumber, mine)

        assert synced.status == 200, synced.body
        assert all(a.status == 200 for a in answers), [a.body for a in answers]
        assert [a.body["removed"] or a.body["added"] for a in answers] == [
            [name] for pair in done for name in pair
        ]
        members, enrolled, roles = state(cluster, cohort_id, instance_id)
        assert enrolled == members, (
            f"round {round_}: enrolled and not in the cohort: {sorted(enrolled - members)}; "
            f"in the cohort and not enrolled: {sorted(members - enrolled)}"
        )
        assert roles == members
        moved = mine[: len(done)]
        out, into = [uid for (uid, _), _ in moved], [uid for _, (uid, _) in moved]
        history = events(cluster, out + into, instance_id, before)
        for uid in out:  # enrolled at the start, removed once: one unenrolment, no return
            assert history[uid] == ["user_unenrolled"], (round_, uid, history[uid])
        for uid in into:
            assert history[uid] == ["user_enrolled"], (round_, uid, history[uid])


def sync_during_changes(cluster: Cluster, idnumber: str, pairs: list) -> tuple:
    """The cohort sync on one node; on the other, one member out and one in, again and again
    for as long as the sync runs. Returns the sync's answer, the changes' answers and the
    (leaving, joining) usernames changed."""
    sync_node, api_node = cluster.nodes
    synced_at = threading.Event()
    done: list[tuple[str, str]] = []

    def sync():
        try:
            return cluster.post(sync_node, "/api/v1/tasks/cohort_sync/run")
        finally:
            synced_at.set()

    def changes():
        answers = []
        path = f"/api/v1/cohorts/{idnumber}/members"
        for (_, leaving), (_, joining) in pairs:
            if synced_at.is_set() and done:
                break
            answers.append(cluster.post(api_node, path + "/remove", {"usernames": [leaving]}))
            answers.append(cluster.post(api_node, path, {"usernames": [joining]}))
            done.append((leaving, joining))
        return answers

    synced, answers = race(sync, changes)
    return synced, answers, done


def _drift(cluster: Cluster, cohort_id: int, prefix: str) -> None:
    """``DRIFT`` new users put straight into the cohort's table (no hook fires): the next sync
    has to enrol them all."""
    with cluster.site() as site, site.atomic():
        site.session.execute(
            insert(User),
            [
                {"username": f"{prefix}u{i}", "email": f"{prefix}u{i}@example.org",
                 "firstname": "D", "lastname": "Rift", "timecreated": 0}
                for i in range(DRIFT)
            ],
        )  # fmt: skip
        ids = site.session.scalars(select(User.id).where(User.username.like(f"{prefix}u%")))
        site.session.execute(
            insert(CohortMember), [{"cohort_id": cohort_id, "user_id": uid} for uid in ids]
        )
        assert (
            site.session.scalar(select(func.count()).where(CohortMember.cohort_id == cohort_id))
            >= DRIFT
        )
