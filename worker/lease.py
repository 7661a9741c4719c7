"""A key in Redis held by one process at a time: taken with SET NX, renewed by a daemon
thread every third of its time to live, deleted on release, expiring if its holder dies.
GPU leases (worker/gpu_lease.py) and the one-training-at-a-time lock use it."""

from __future__ import annotations

import os
import socket
import threading

import redis

from facelabel.links import redis_client

# Renew or release only while the key still names this owner (it may have expired and been
# taken by another process meanwhile).
TRAINING_LOCK = "facelabel:training"  # held by the trainer while a run trains

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Lease:
    def __init__(self, client: redis.Redis, key: str, owner: str, ttl: int):
        self.client, self.key, self.owner, self.ttl = client, key, owner, ttl
        self._stopped = threading.Event()
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        threading.Thread(target=self._keep, name=f"lease {key}", daemon=True).start()

    @classmethod
    def take(cls, client: redis.Redis, key: str, ttl: int) -> "Lease | None":
        """The lease on ``key``, or None while another process holds it."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
        return cls(client, key, owner, ttl) if client.set(key, owner, nx=True, ex=ttl) else None

    def _keep(self) -> None:
        while not self._stopped.wait(self.ttl / 3):
            try:
                self._renew(keys=[self.key], args=[self.owner, self.ttl])
            except redis.RedisError:
                pass  # try again next round; the key outlives a short broker outage

    def release(self) -> None:
        self._stopped.set()
        self._release(keys=[self.key], args=[self.owner])


def training_lock_held(broker_url: str) -> bool:
    """Whether a trainer holds the training lease (raises redis.RedisError when unreachable)."""
    return bool(redis_client(broker_url).exists(TRAINING_LOCK))
