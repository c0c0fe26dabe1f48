"""``/healthz``: what a load balancer asks a node before sending it traffic.

200 when the node can read enrolkit's tables, 503 otherwise. No login is asked (a load balancer
has none) and nothing is told beyond ok or not: the reason goes to the server log, under the
request id the answer carries, never to whoever is asking.
"""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from .failures import request_id
from .guards import public


def init_app(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])


@public
def healthz():
    """One query on a core table, on a connection of its own (a request's session may be the
    thing that is broken)."""
    try:
        with current_app.extensions["enrolkit"].db.connect() as connection:
            connection.exec_driver_sql("SELECT 1 FROM enrol_instances LIMIT 1").all()
    except SQLAlchemyError:
        current_app.logger.exception("request %s: health check failed", request_id())
        return _answer("unavailable", 503)
    return _answer("ok", 200)


def _answer(status: str, code: int):
    return {"status": status}, code, {"Cache-Control": "no-store"}
