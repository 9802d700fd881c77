"""Score plugins: rank the feasible nodes, 0-100 per plugin, weighted like kube-scheduler's default profile.

NodeResourcesFit (LeastAllocated, weight 1), NodeResourcesBalancedAllocation (1), TaintToleration on
PreferNoSchedule taints (3), preferred NodeAffinity (2) and spreading of a controller's replicas across nodes
(SelectorSpread-like on the hostname, weight 2, standing in for PodTopologySpread's system defaults).
"""

from __future__ import annotations

from kubemark.master.scheduler.cache import NodeInfo
from kubemark.master.scheduler.filters import node_matches_term, tolerated
from kubemark.master.scheduler.pod_info import PodInfo

MAX_NODE_SCORE = 100

WEIGHT_LEAST_ALLOCATED = 1
WEIGHT_BALANCED = 1
WEIGHT_TAINT = 3
WEIGHT_NODE_AFFINITY = 2
WEIGHT_SPREAD = 2


def least_allocated(pod: PodInfo, node: NodeInfo) -> int:
    """Mean over cpu and memory of the free share after placing the pod (non-zero requests)."""
    alloc = node.allocatable
    total = 0
    capacity = alloc.milli_cpu
    requested = node.non_zero_cpu + pod.non_zero_cpu
    if capacity > 0 and requested <= capacity:
        total += (capacity - requested) * MAX_NODE_SCORE // capacity
    capacity = alloc.memory
    requested = node.non_zero_mem + pod.non_zero_mem
    if capacity > 0 and requested <= capacity:
        total += (capacity - requested) * MAX_NODE_SCORE // capacity
    return total // 2


def balanced_allocation(pod: PodInfo, node: NodeInfo) -> int:
    """(1 - standard deviation of the cpu and memory fractions) x 100, after placing the pod."""
    alloc = node.allocatable
    fractions: list[float] = []
    if alloc.milli_cpu > 0:
        fractions.append(min(1.0, (node.requested.milli_cpu + pod.requests.milli_cpu) / alloc.milli_cpu))
    if alloc.memory > 0:
        fractions.append(min(1.0, (node.requested.memory + pod.requests.memory) / alloc.memory))
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    else:
        std = 0.0
    return int((1 - std) * MAX_NODE_SCORE)


def intolerable_prefer_no_schedule(pod: PodInfo, node: NodeInfo) -> int:
    count = 0
    for key, value, effect in node.taints:
        if effect == "PreferNoSchedule" and not tolerated(pod.tolerations, key, value, effect):
            count += 1
    return count


def preferred_node_affinity(pod: PodInfo, node: NodeInfo) -> int:
    return sum(
        weight
        for weight, term in pod.preferred_node_terms
        if weight and node_matches_term(term, node.labels, node.name)
    )


def _normalize(raw: list[int], reverse: bool) -> list[int]:
    """helper.DefaultNormalizeScore: scale to 0-100 by the maximum; `reverse` favours the smallest."""
    top = max(raw) if raw else 0
    if top == 0:
        return [MAX_NODE_SCORE if reverse else 0] * len(raw)
    if reverse:
        return [MAX_NODE_SCORE - MAX_NODE_SCORE * r // top for r in raw]
    return [MAX_NODE_SCORE * r // top for r in raw]


def _resource_scores(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """least_allocated + balanced_allocation (weights 1), inlined: this runs for every feasible node."""
    nz_cpu, nz_mem = pod.non_zero_cpu, pod.non_zero_mem
    req_cpu, req_mem = pod.requests.milli_cpu, pod.requests.memory
    out = []
    for n in nodes:
        alloc = n.allocatable
        cap_cpu, cap_mem = alloc.milli_cpu, alloc.memory
        least = 0
        r = n.non_zero_cpu + nz_cpu
        if cap_cpu > 0 and r <= cap_cpu:
            least += (cap_cpu - r) * MAX_NODE_SCORE // cap_cpu
        r = n.non_zero_mem + nz_mem
        if cap_mem > 0 and r <= cap_mem:
            least += (cap_mem - r) * MAX_NODE_SCORE // cap_mem
        if cap_cpu > 0 and cap_mem > 0:
            f_cpu = (n.requested.milli_cpu + req_cpu) / cap_cpu
            f_mem = (n.requested.memory + req_mem) / cap_mem
            if f_cpu > 1.0:
                f_cpu = 1.0
            if f_mem > 1.0:
                f_mem = 1.0
            balanced = int((1 - abs(f_cpu - f_mem) / 2) * MAX_NODE_SCORE)
        else:
            balanced = MAX_NODE_SCORE
        out.append(WEIGHT_LEAST_ALLOCATED * (least // 2) + WEIGHT_BALANCED * balanced)
    return out


def score_nodes(pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
    """Weighted total per node, in the order given."""
    totals = _resource_scores(pod, nodes)
    if any(n.taints for n in nodes):
        taint = _normalize([intolerable_prefer_no_schedule(pod, n) for n in nodes], reverse=True)
    else:
        taint = None
    if taint is None:
        # Nobody has intolerable PreferNoSchedule taints: every node gets the full score.
        bonus = WEIGHT_TAINT * MAX_NODE_SCORE
        totals = [t + bonus for t in totals]
    else:
        totals = [t + WEIGHT_TAINT * s for t, s in zip(totals, taint, strict=True)]
    if pod.preferred_node_terms:
        affinity = _normalize([preferred_node_affinity(pod, n) for n in nodes], reverse=False)
        totals = [t + WEIGHT_NODE_AFFINITY * s for t, s in zip(totals, affinity, strict=True)]
    if pod.owner_uid:
        owner = pod.owner_uid
        spread = _normalize([n.owner_counts.get(owner, 0) for n in nodes], reverse=True)
        totals = [t + WEIGHT_SPREAD * s for t, s in zip(totals, spread, strict=True)]
    else:
        bonus = WEIGHT_SPREAD * MAX_NODE_SCORE
        totals = [t + bonus for t in totals]
    return totals
