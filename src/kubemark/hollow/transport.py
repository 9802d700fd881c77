"""A hollow node's connectors: how long idle connections live and how many the heartbeat client may hold."""

from __future__ import annotations

import aiohttp

IDLE_CONNECTION_SECONDS = 60.0  # under the API server's 75 s keep-alive; client-go keeps idle ones 90 s
# A kubelet multiplexes all its calls over one HTTP/2 connection; over HTTP/1.1 each call in flight needs a
# connection, and every new one costs the API server a TLS handshake. When the server queues a node's calls
# (priority and fairness), more connections would only add handshakes: its further calls wait for one of these.
CALL_CONNECTIONS = 4


def node_connector(limit: int = 0) -> aiohttp.TCPConnector:
    """A connector for one node's session; `limit=1` for the heartbeat client's single connection."""
    return aiohttp.TCPConnector(limit=limit, keepalive_timeout=IDLE_CONNECTION_SECONDS, enable_cleanup_closed=False)
