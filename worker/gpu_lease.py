"""One GPU per worker when compose scales a service: each replica sees every GPU of its
machine and leases a free one in Redis before TensorFlow starts.

Docker turns ``count: 1`` into "GPU 0" for every replica and gives containers no replica
number (docker/compose#11863, NVIDIA/nvidia-container-toolkit#521), so the choice is made
here: the worker takes the first index whose key ``facelabel:gpu:{node}:{index}`` it can
create, renews it while it runs and lets it expire when it dies. The lease is cooperative:
it keeps facelabel workers apart, not other programs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import redis

KEY = "facelabel:gpu:{node}:{index}"
# Renew or release only while the key still names this owner (it may have expired and been
# taken by another worker meanwhile).
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class GpuError(Exception):
    """No GPU could be leased; ``str()`` says why."""


def visible_gpus(configured: tuple[str, ...]) -> tuple[str, ...]:
    """GPU indices this container can use: FACELABEL_GPU_IDS, else what nvidia-smi lists."""
    if configured:
        return configured
    try:
        listed = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise GpuError(
            f"no GPU visible (nvidia-smi: {exc}); set FACELABEL_GPU=none to run on the CPU"
        ) from None
    return tuple(line.strip() for line in listed.splitlines() if line.strip())


class GpuLease:
    """A held GPU index, renewed by a daemon thread every third of its time to live."""

    def __init__(self, client: redis.Redis, key: str, index: str, owner: str, ttl: int):
        self.client, self.key, self.index, self.owner, self.ttl = client, key, index, owner, ttl
        self._stopped = threading.Event()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        threading.Thread(target=self._keep, name="gpu-lease", daemon=True).start()

    def _keep(self) -> None:
        while not self._stopped.wait(self.ttl / 3):
            try:
                self._renew(keys=[self.key], args=[self.owner, self.ttl])
            except redis.RedisError:
                pass  # try again next round; the key outlives a short broker outage

    def release(self) -> None:
        self._stopped.set()
        self._release(keys=[self.key], args=[self.owner])


def lease_gpu(broker_url: str, gpus: tuple[str, ...], *, node: str, ttl: int = 60) -> GpuLease:
    """Lease the first free GPU of ``gpus`` on ``node``; raises GpuError when all are taken."""
    client = redis.Redis.from_url(broker_url)
    owner = f"{socket.gethostname()}:{os.getpid()}"
    for index in gpus:
        key = KEY.format(node=node, index=index)
        try:
            if client.set(key, owner, nx=True, ex=ttl):
                return GpuLease(client, key, index, owner, ttl)
        except redis.RedisError as exc:
            raise GpuError(f"cannot lease a GPU through the broker: {exc}") from None
    raise GpuError(
        f"all {len(gpus)} GPUs of node {node!r} ({', '.join(gpus)}) are leased by other workers: "
        "scale the workers down to the GPU count"
    )
