"""The compose topology as local processes (``make stack``; the local-topology test uses it):
the machine's Redis and PostgreSQL, a migration, N label workers (each with a Prometheus
endpoint), a trainer worker on queue ``train``, the beat scheduler and the review app. Everything it starts
runs in its own process group, is listed in ``stack.pids`` and is stopped by PID.

Usage: python deploy/stack.py [--workers 2] [--dir build/stack] [--metrics-port 9101] [--web-port 8765]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from celery import Celery
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


@dataclasses.dataclass
class Service:
    name: str
    args: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None

    @property
    def hostname(self) -> str:
        return f"{self.name}@{os.uname().nodename}"


class LocalStack:
    """Start, check and stop the stack's processes; ``env`` holds the FACELABEL_* settings."""

    def __init__(
        self,
        env: dict[str, str],
        folder: Path,
        *,
        workers: int = 2,
        metrics_port: int = 9101,
        web_port: int = 8765,
    ):
        self.env, self.folder = {**os.environ, **env}, Path(folder)
        self.services = [
            Service(f"worker{i + 1}", ["worker", "--hostname", f"worker{i + 1}@%h"], {
                "FACELABEL_METRICS_PORT": str(metrics_port + i),
                "FACELABEL_HEARTBEAT_FILE": str(self.folder / f"worker{i + 1}.heartbeat"),
            })
            for i in range(workers)
        ]  # fmt: skip
        self.services.append(Service("trainer", ["worker", "-Q", "train", "--hostname", "trainer@%h"], {}))
        self.services.append(Service("beat", ["beat"], {}))
        self.services.append(Service("web", ["serve", "--port", str(web_port)], {}))
        self.web_url = f"http://127.0.0.1:{web_port}"

    @property
    def metrics_urls(self) -> list[str]:
        return [
            f"http://127.0.0.1:{s.env['FACELABEL_METRICS_PORT']}/metrics"
            for s in self.services
            if "FACELABEL_METRICS_PORT" in s.env
        ]

    def start(self) -> None:
        """Create the database if missing, migrate (the compose ``migrate`` service), then start
        the long-running services."""
        self.folder.mkdir(parents=True, exist_ok=True)
        persist_broker(self.env["FACELABEL_BROKER_URL"])
        create_database(self.env["FACELABEL_DB_URL"])
        migrate = self._run(["migrate"], timeout=300)
        if migrate.returncode != 0:
            raise RuntimeError(f"migration failed: {migrate.stderr.strip()}")
        for service in self.services:
            log = open(self.folder / f"{service.name}.log", "ab")
            service.process = subprocess.Popen(
                [sys.executable, "-m", "facelabel", *service.args],
                env={**self.env, **service.env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
        (self.folder / "stack.pids").write_text("".join(f"{s.name} {s.process.pid}\n" for s in self.services))

    def wait_ready(self, timeout: float = 300) -> dict[str, list[str]]:
        """Wait until every worker answers; returns each worker's consumed queues."""
        app = Celery("facelabel-stack", broker=self.env["FACELABEL_BROKER_URL"])
        wanted = {s.hostname for s in self.services if s.name not in ("beat", "web")}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services:
                if service.process.poll() is not None:
                    raise RuntimeError(f"{service.name} exited: see {self.folder / service.name}.log")
            queues = app.control.inspect(timeout=1.0).active_queues() or {}
            if wanted <= set(queues):
                app.close()
                return {host: [q["name"] for q in found] for host, found in queues.items()}
            time.sleep(1)
        app.close()
        raise TimeoutError(f"workers not ready after {timeout} s: see the logs in {self.folder}")

    def stop(self) -> None:
        """SIGTERM each process group (Celery's warm shutdown), SIGKILL what is left after 30 s."""
        for service in self.services:
            _signal_group(service.process, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for service in self.services:
            try:
                service.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(service.process, signal.SIGKILL)
                service.process.wait(timeout=30)

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "facelabel", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def _signal_group(process: subprocess.Popen | None, sig: int) -> None:
    if process is not None and process.poll() is None:
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass


def persist_broker(url: str) -> None:
    """Turn on Redis's append-only file, as compose runs it, so queued chunks survive a restart
    (the chunk ledger would re-send them anyway, a little later)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        if client.config_get("appendonly").get("appendonly") != "yes":
            client.config_set("appendonly", "yes")
            print("redis: append-only file turned on", file=sys.stderr)
    except redis.ResponseError as exc:  # CONFIG renamed or disabled on this server
        print(
            f"redis: could not turn on the append-only file ({exc}); queued work is lost on restart",
            file=sys.stderr,
        )
    finally:
        client.close()


def create_database(url: str) -> None:
    """Create the PostgreSQL database ``url`` names if it does not exist (SQLite needs nothing)."""
    target = make_url(url)
    if not target.drivername.startswith("postgresql"):
        return
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        exists = connection.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}
        ).first()
        if not exists:
            connection.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=Path("build/stack"), help="Logs, PIDs, beat state.")
    parser.add_argument("--metrics-port", type=int, default=9101, help="First worker's; the next get +1.")
    parser.add_argument("--web-port", type=int, default=8765, help="The review app's (on 127.0.0.1).")
    args = parser.parse_args()
    env = {
        "FACELABEL_DB_URL": os.environ.get(
            "FACELABEL_DB_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/facelabel_stack"
        ),
        "FACELABEL_BROKER_URL": os.environ.get("FACELABEL_BROKER_URL", "redis://127.0.0.1:6379/0"),
    }
    stack = LocalStack(
        env, args.dir, workers=args.workers, metrics_port=args.metrics_port, web_port=args.web_port
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    stack.start()
    try:
        queues = stack.wait_ready()
        for host, names in sorted(queues.items()):
            print(f"{host}: queues {', '.join(names)}")
        print(f"metrics: {' '.join(stack.metrics_urls)}")
        print(f"review app: {stack.web_url}/")
        print(f"logs and PIDs in {args.dir}; enqueue with:")
        shown = make_url(env["FACELABEL_DB_URL"]).render_as_string(hide_password=True)
        print(f"  FACELABEL_DB_URL={shown} facelabel enqueue PHOTOS --wait  (password: as set)")
        print("Ctrl-C stops everything")
        while all(s.process.poll() is None for s in stack.services):
            time.sleep(1)
        print("a service exited; stopping the others", file=sys.stderr)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
