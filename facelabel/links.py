"""How long a network link may stay silent before a connection over it counts as dead,
for PostgreSQL and Redis alike.

TCP's own defaults probe an idle connection only after two hours and give up on
unacknowledged data after about fifteen minutes: a worker behind a cut link would hang that
long on a statement or a publish. With these, a connection over a dead link fails within
about ``USER_TIMEOUT`` seconds, busy or idle, and the caller's retry takes over. A URL that
sets its own values (``?keepalives_idle=…``) keeps them.
"""

from __future__ import annotations

import socket

CONNECT_TIMEOUT = 10  # seconds to establish a connection
KEEPALIVE_IDLE = 10  # seconds of silence on an idle connection before the first probe
KEEPALIVE_INTERVAL = 5  # seconds between probes
KEEPALIVE_COUNT = 3  # unanswered probes that end it: an idle dead link is noticed in 25 s
USER_TIMEOUT = 30  # seconds sent data may stay unacknowledged before the connection ends
REPLY_TIMEOUT = 30  # seconds a Redis command waits for its reply


def tcp_keepalive_options() -> dict[int, int]:
    """``setsockopt(IPPROTO_TCP, …)`` values for a client socket (redis-py's
    ``socket_keepalive_options``)."""
    return {
        socket.TCP_KEEPIDLE: KEEPALIVE_IDLE,
        socket.TCP_KEEPINTVL: KEEPALIVE_INTERVAL,
        socket.TCP_KEEPCNT: KEEPALIVE_COUNT,
        socket.TCP_USER_TIMEOUT: USER_TIMEOUT * 1000,
    }


def redis_options() -> dict:
    """Keyword arguments of a redis-py client, and options of kombu's Redis transport by the
    same names: a command waits at most REPLY_TIMEOUT for its reply, and a connection idle
    that long is checked with a PING before it is used."""
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": REPLY_TIMEOUT,
        "socket_keepalive": True,
        "socket_keepalive_options": tcp_keepalive_options(),
        "health_check_interval": KEEPALIVE_IDLE,
    }


def redis_client(url: str):
    """A redis-py client for ``url`` (the broker's Redis) with these time-outs."""
    import redis

    return redis.Redis.from_url(url, **redis_options())
