"""Which pooled connections need a round trip before they are lent.

A connection may be dead if it sat idle long enough to have been dropped silently (by a
firewall, say), or if the server wrote to it while it sat idle: a server that restarts or
ends the session says so and closes the socket, which a poll of the socket sees at no cost.
Only those are pinged; the rest are lent as they are. Pinging every connection lent cost a
round trip per transaction or checkpoint operation, about twenty a turn.
"""

import select
import time
from typing import Any

import psycopg

PING_AFTER_IDLE_SECONDS = 30.0


def may_be_dead(connection: psycopg.AsyncConnection[Any] | None, idle_since: float | None) -> bool:
    if connection is None or idle_since is None or time.monotonic() - idle_since > PING_AFTER_IDLE_SECONDS:
        return True
    try:
        socket = connection.pgconn.socket
    except psycopg.Error:  # closed already
        return True
    poll = select.poll()
    poll.register(socket, select.POLLIN)
    return bool(poll.poll(0))
