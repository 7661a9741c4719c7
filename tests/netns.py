"""Worker "hosts" as Linux network namespaces on a private bridge, for partition tests.

The root namespace holds the bridge (``BRIDGE_IP``) and the control plane: Redis and
PostgreSQL bound to the bridge address, beat, the test. Each host is a namespace with its own
hostname, joined to the bridge by a veth pair, reaching the servers over that link only.
Neighbour entries are permanent, so cutting a host (its bridge port disabled) drops every
frame silently: connections hang as behind a dead switch, nothing is refused. Needs root and
``ip`` (iproute2); everything made here is removed by ``Network.remove``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from tests.services import wait_listening
from tests.test_outage import Cluster

SUBNET = "10.231.0"  # a private /24 that exists only inside this harness
BRIDGE_IP = f"{SUBNET}.1"
REDIS_PORT = 6390
PG_PORT = 5439
PERMANENT = ("nud", "permanent", "dev")  # + the device


def available() -> str | None:
    """Why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (ip netns)"
    missing = [tool for tool in ("ip", "bridge", "unshare", "redis-server") if shutil.which(tool) is None]
    return f"missing {', '.join(missing)}" if missing else None


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def _mac(*netns: str, device: str) -> str:
    return _ip(*netns, "-br", "link", "show", "dev", device).split()[2]


class Host:
    """One namespace: its address, its side of the link and the processes started in it."""

    def __init__(self, tag: str, number: int):
        self.name = f"host{number}"
        self.namespace = f"fl-{tag}-{self.name}"
        self.port = f"fl{tag}p{number}"  # the veth end on the bridge (15 characters at most)
        self.address = f"{SUBNET}.{10 + number}"
        self.processes: list[subprocess.Popen] = []

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host, under its own hostname."""
        inner = f'hostname {self.name} && exec "$@"'
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "sh", "-c", inner, "sh", *argv]

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
        """``argv`` running on this host, in a process group of its own, output to ``log``."""
        with open(log, "ab") as output:
            process = subprocess.Popen(
                self.command(argv),
                env={**os.environ, **env},
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def worker(self, env: dict[str, str], log: Path, *extra: str) -> subprocess.Popen:
        """``facelabel worker`` on this host."""
        argv = [sys.executable, "-m", "facelabel", "worker", "--hostname", f"{self.name}@%h", *extra]
        return self.start(argv, env, log)

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=60)


class Network:
    """A bridge in the root namespace and ``hosts`` namespaces attached to it."""

    def __init__(self, hosts: int = 2):
        tag = uuid.uuid4().hex[:4]
        self.bridge = f"fl{tag}br"
        self.hosts = [Host(tag, n) for n in range(1, hosts + 1)]
        self.servers: list[subprocess.Popen] = []
        self.cluster: Cluster | None = None
        try:
            self._build()
        except BaseException:
            self.remove()
            raise

    def _build(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{BRIDGE_IP}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host in self.hosts:
            _ip("netns", "add", host.namespace)
            inside = ("-n", host.namespace)
            _ip("link", "add", host.port, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
            _ip("link", "set", host.port, "master", self.bridge, "up")
            _ip(*inside, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip(*inside, "link", "set", "eth0", "up")
            _ip(*inside, "link", "set", "lo", "up")
        # no ARP: a cut link must look silent, not "no route to host" (the bridge's address
        # is read once all ports are on it: it may change as they join)
        bridge_mac = _mac(device=self.bridge)
        for host in self.hosts:
            inside = ("-n", host.namespace)
            _ip(*inside, "neigh", "replace", BRIDGE_IP, "lladdr", bridge_mac, *PERMANENT, "eth0")
            host_mac = _mac(*inside, device="eth0")
            _ip("neigh", "replace", host.address, "lladdr", host_mac, *PERMANENT, self.bridge)

    def cut(self, host: Host) -> None:
        """Drop every frame to and from ``host`` from now on."""
        subprocess.run(["bridge", "link", "set", "dev", host.port, "state", "0"], check=True)

    def heal(self, host: Host) -> None:
        subprocess.run(["bridge", "link", "set", "dev", host.port, "state", "3"], check=True)

    def start_redis(self) -> str:
        """A private Redis on the bridge; its URL."""
        options = ["--bind", BRIDGE_IP, "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no"]
        # reached from the namespaces, on a bridge nothing else is on
        options += ["--protected-mode", "no"]
        server = subprocess.Popen(
            ["redis-server", *options],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.servers.append(server)
        if not wait_listening(BRIDGE_IP, REDIS_PORT):
            raise RuntimeError(f"redis-server did not come up on {BRIDGE_IP}:{REDIS_PORT}")
        return f"redis://{BRIDGE_IP}:{REDIS_PORT}/0"

    def start_postgres(self) -> str:
        """A private PostgreSQL cluster on the bridge; its URL."""
        self.cluster = BridgedCluster(BRIDGE_IP, PG_PORT)
        self.cluster.start()
        return self.cluster.url

    def remove(self) -> None:
        """Stop every process and server, delete the namespaces (their veths go with them)
        and the bridge; what was never made is skipped."""
        for host in self.hosts:
            host.stop()
        for server in self.servers:
            server.kill()
            server.wait(timeout=30)
        if self.cluster is not None:
            self.cluster.remove()
        for host in self.hosts:
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)


class BridgedCluster(Cluster):
    """The outage tests' throw-away PostgreSQL, listening on ``address`` instead of loopback."""

    def __init__(self, address: str, port: int):
        super().__init__()
        self.address, self.port = address, port
        with open(self.data / "pg_hba.conf", "a") as rules:
            rules.write(f"host all all {SUBNET}.0/24 trust\n")
        self.url = f"postgresql+psycopg://postgres@{address}:{port}/postgres"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses={self.address}"
        log = str(self.folder / "log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")
