"""Every measurement Method clusterloader2 registers, and what kubemark does with it.

clusterloader2's own test configs (testing/density, testing/load and the rest) name these Methods. Each is one of:

- implemented (`kubemark.measure.registry.MEASUREMENTS` has its class), with clusterloader2's Params, semantics
  and summary names;
- `NOT_MEASURED_HERE`: accepted, and reported as "not measured here: <reason>" (terminal, summary.json,
  report.html), because on hollow nodes it cannot mean what it means on a real cluster;
- `NOT_YET`: a clusterloader2 measurement kubemark does not run yet: config validation says so, by name.

docs/clusterloader2-measurements.md is the table of all three; tests check it lists every name here.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["NOT_MEASURED_HERE", "NOT_YET", "PROMETHEUS"]

PROMETHEUS = "needs clusterloader2's in-cluster Prometheus stack, which a kubemark run does not deploy"
_NETWORK = "needs real pod networking"
_PROFILE = (
    "pprof profiles of the control plane are not collected "
    "(the embedded master's components are Python processes without /debug/pprof)"
)

NOT_MEASURED_HERE: Mapping[str, str] = {
    "InClusterNetworkLatency": f"{_NETWORK} (ping probe pods, read through Prometheus)",
    "DnsLookupLatency": f"{_NETWORK} and cluster DNS (DNS probe pods, read through Prometheus)",
    "InClusterAPIServerRequestLatency": f"{_NETWORK}: prober pods that really run, read through Prometheus",
    "DNSPerformanceK8sHostnames": f"{_NETWORK} and cluster DNS: dnsperfgo client pods that really run",
    "DNSProgrammingLatency": "needs CoreDNS and Prometheus",
    "NodeLocalDNSLatencyPrometheus": "needs NodeLocal DNSCache and Prometheus",
    "NetworkPerformanceMetrics": f"{_NETWORK}: iperf/siege worker pods that really send traffic",
    "NetworkPolicyEnforcement": f"{_NETWORK} and a network policy implementation",
    "CiliumEndpointPropagationDelay": "needs Cilium and Prometheus",
    "LoadBalancerNodeSyncLatency": "needs a cloud provider's load balancers",
    "NegLatency": "needs GKE network endpoint groups and Prometheus",
    "ServiceCreationLatency": f"{_NETWORK}: it waits until each Service answers from pods that really run",
    "PodPeriodicCommand": "needs pods that really run commands (hollow pods have no processes to exec into)",
    "Exec": "runs commands on the clusterloader2 host; kubemark does not execute commands from a test config",
    "CPUProfile": _PROFILE,
    "MemoryProfile": _PROFILE,
    "BlockProfile": _PROFILE,
    "MutexProfile": _PROFILE,
    "ClusterOOMsTracker": "OOM-kill events need real nodes: hollow kubelets run no container processes",
    "KubeStateMetricsLatency": "needs kube-state-metrics pods that really run",
    "MetricsServerPrometheus": "needs metrics-server (hollow kubelets serve no resource metrics) and Prometheus",
    "MetricsServerLatency": "needs metrics-server (hollow kubelets serve no resource metrics)",
    "ContainerMemoryUsage": "needs metrics.k8s.io (metrics-server)",
    "GenericPrometheusQuery": PROMETHEUS,
    "PrometheusSchedulingMetrics": f"{PROMETHEUS} (SchedulingMetrics reads kube-scheduler directly)",
    "SchedulingThroughputPrometheus": f"{PROMETHEUS} (SchedulingThroughput measures it from the pods watch)",
    "SLOMeasurement": f"{PROMETHEUS} and the probes",
    "WindowsResourceUsagePrometheus": "needs Windows nodes and Prometheus",
    "RestartApiserver": "needs SSH to the master (it moves kube-apiserver's static-pod manifest away and back)",
    "ScaleNodes": "needs a cloud provider's node groups",
}
"""Method -> why it cannot be measured on hollow nodes (shown after "not measured here: ")."""

NOT_YET: Mapping[str, str] = {
    "ResourceClaimAllocationLatency": "not implemented yet (dynamic resource allocation)",
}
"""clusterloader2 Methods kubemark does not run yet -> what is missing (a config naming one fails validation)."""
