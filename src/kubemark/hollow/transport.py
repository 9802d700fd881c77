"""A hollow node's connectors: how long idle connections live and how many the heartbeat client may hold."""

from __future__ import annotations

import aiohttp

IDLE_CONNECTION_SECONDS = 60.0  # under the API server's 75 s keep-alive; client-go keeps idle ones 90 s
# A kubelet multiplexes its calls over one HTTP/2 connection, and few are in flight at once: its status manager
# syncs one pod status at a time and its event broadcaster sends one event at a time (leases and node status
# ride the heartbeat connection here). Over HTTP/1.1 each call in flight needs a connection, and every new one
# costs the API server a TLS handshake; two keep that bound, so when the server queues a node's calls (priority
# and fairness) its further calls wait at the node instead of filling the server's queues and drawing 429s.
CALL_CONNECTIONS = 2


def node_connector(limit: int = 0) -> aiohttp.TCPConnector:
    """A connector for one node's session; `limit=1` for the heartbeat client's single connection."""
    return aiohttp.TCPConnector(limit=limit, keepalive_timeout=IDLE_CONNECTION_SECONDS, enable_cleanup_closed=False)
