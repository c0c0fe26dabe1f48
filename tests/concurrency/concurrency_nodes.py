"""Two real ``enrolkit serve`` processes on one database, and requests fired at both at once.

What the concurrency tests share (a module of its own, not ``conftest``, so that importing it
never picks up another folder's conftest). A :class:`Cluster` is one database (SQLite file or
PostgreSQL database) with one shared home (``config.py`` with the shared ``SECRET_KEY``) and two
nodes serving it, as issue 18's university deploys enrolkit. :func:`race` sends requests from
threads that wait at a barrier, so the requests leave together and overlap on the servers.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from enrolkit.api import tokens
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from enrolkit.testing import SiteFactory

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Answer:
    """One HTTP answer: status, headers and the JSON body (None when not JSON)."""

    status: int
    headers: dict[str, str]
    body: object

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class Node:
    """One ``enrolkit serve`` process."""

    port: int
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    """Two nodes on one database, a write token, and the database for the test's own reads."""

    url: str
    home: Path
    runtime: Runtime
    token: str = ""
    nodes: list[Node] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        environ = {**os.environ, "ENROLKIT_DATABASE_URL": self.url, "ENROLKIT_HOME": str(self.home)}
        for name in ("ENROLKIT_NOW", "ENROLKIT_DISABLE_PLUGINS", "ENROLKIT_DEBUG"):
            environ.pop(name, None)
        environ.update(extra)
        return environ

    def start(self, count: int = 2) -> None:
        for _ in range(count):
            port = free_port()
            with open(self.home / f"node-{port}.log", "w") as log:
                process = subprocess.Popen(
                    [ENROLKIT, "serve", "--port", str(port), "--threads", "4"],
                    env=self.env(),
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
            self.nodes.append(Node(port, process))
        for node in self.nodes:
            self._wait_ready(node)

    def _wait_ready(self, node: Node) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                if self.get(node, "/healthz").status == 200:
                    return
            except OSError:
                pass
            assert node.process.poll() is None, self.server_log(node)
            assert time.monotonic() < deadline, "the node never answered /healthz"
            time.sleep(0.1)

    def server_log(self, node: Node) -> str:
        return (self.home / f"node-{node.port}.log").read_text()

    def stop(self) -> None:
        for node in self.nodes:
            if node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes:
            try:
                node.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait()
        self.nodes.clear()

    def site(self):
        """A site on the cluster's database, for the test's set-up and checks."""
        return self.runtime.site()

    def get(self, node: Node, path: str, headers: dict | None = None) -> Answer:
        return self.call(node, "GET", path, None, headers=headers)

    def post(self, node: Node, path: str, body: dict | None = None, **headers: str) -> Answer:
        return self.call(node, "POST", path, body or {}, headers=headers)

    def call(
        self, node: Node, method: str, path: str, body: dict | None, headers: dict | None = None
    ) -> Answer:
        request = urllib.request.Request(
            node.url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return Answer(response.status, dict(response.headers), _json(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), _json(error.read()))


def _json(raw: bytes) -> object:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def race(*calls: Callable[[], Answer]) -> list[Answer]:
    """Run ``calls`` at the same instant, one thread each (a barrier releases them together);
    their answers in the same order."""
    barrier = threading.Barrier(len(calls))
    answers: list[Answer | BaseException | None] = [None] * len(calls)

    def run(index: int, call: Callable[[], Answer]) -> None:
        barrier.wait(timeout=60)
        try:
            answers[index] = call()
        except BaseException as exc:  # noqa: BLE001 - reported by the test, below
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    for answer in answers:
        if isinstance(answer, BaseException):
            raise answer
    return answers  # type: ignore[return-value]


def make_cluster(url: str, home: Path) -> Cluster:
    """The schema and the preset rows on ``url``, a home with a shared secret key, a token."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.py").write_text('SECRET_KEY = "shared-by-every-node-of-the-test"\n')
    plugins = Plugins(entry_points=True)
    plugins.load_all()
    runtime = Runtime(url, plugins)
    from enrolkit.models import Base

    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    cluster = Cluster(url=url, home=home, runtime=runtime)
    with runtime.site() as site, site.atomic():
        cluster.token = tokens.create(site, "lms", tokens.WRITE)
        for method in ("cohort", "autoenrol"):
            site.set_method_enabled(method, True)
    return cluster


def factory(site) -> SiteFactory:
    return SiteFactory(site)
