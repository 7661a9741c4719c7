"""One GPU per worker when compose scales a service: each replica sees every GPU of its
machine and leases a free one in Redis before TensorFlow starts.

Docker turns ``count: 1`` into "GPU 0" for every replica and gives containers no replica
number (docker/compose#11863, NVIDIA/nvidia-container-toolkit#521), so the choice is made
here: the worker takes the first index whose key ``facelabel:gpu:{node}:{index}`` it can
create, renews it while it runs and lets it expire when it dies. The lease is cooperative:
it keeps facelabel workers apart, not other programs.
"""

from __future__ import annotations

import subprocess

import redis

from facelabel.errors import FacelabelError
from facelabel.links import redis_client
from worker.lease import Lease

KEY = "facelabel:gpu:{node}:{index}"


class GpuError(FacelabelError):
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


class GpuLease(Lease):
    index: str


def lease_gpu(broker_url: str, gpus: tuple[str, ...], *, node: str, ttl: int = 60) -> GpuLease:
    """Lease the first free GPU of ``gpus`` on ``node``; raises GpuError when all are taken."""
    client = redis_client(broker_url)
    for index in gpus:
        try:
            lease = GpuLease.take(client, KEY.format(node=node, index=index), ttl)
        except redis.RedisError as exc:
            raise GpuError(f"cannot lease a GPU through the broker: {exc}") from None
        if lease is not None:
            lease.index = index
            return lease
    raise GpuError(
        f"all {len(gpus)} GPUs of node {node!r} ({', '.join(gpus)}) are leased by other workers: "
        "scale the workers down to the GPU count"
    )
