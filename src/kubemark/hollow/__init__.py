"""Hollow nodes: a kubelet, kube-proxy and node-problem-detector per node, API-faithful, with nothing running.

Typical use::

    config = load_node_config("nodes.yaml")
    pool = NodePool(100, config, load_kubeconfig(), prefix="hollow-node", ramp=50)
    await pool.start(); await pool.wait_ready(60)
    ...
    await pool.stop(delete_nodes=True)

`run_nodes(NodesOptions(...))` is the `kubemark nodes start` entry point (worker processes included).
"""

from kubemark.hollow.config import NodeConfig, NodeConfigError, load_node_config
from kubemark.hollow.kubelet import HollowKubelet
from kubemark.hollow.pool import HollowNode, NodePool, NodesOptions, run_nodes, run_workers

__all__ = [
    "HollowKubelet",
    "HollowNode",
    "NodeConfig",
    "NodeConfigError",
    "NodePool",
    "NodesOptions",
    "load_node_config",
    "run_nodes",
    "run_workers",
]
