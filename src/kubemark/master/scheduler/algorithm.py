"""One scheduling decision: filter a rotating sample of nodes, score the feasible ones, pick the best.

Like kube-scheduler's schedulePod: stop filtering once `num_feasible_nodes_to_find` nodes fit (adaptive
percentageOfNodesToScore), start the next pod where this one stopped, break score ties at random.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from kubemark.master.scheduler.cache import NodeInfo, SchedulerCache
from kubemark.master.scheduler.filters import affinity_state, filter_node
from kubemark.master.scheduler.pod_info import PodInfo
from kubemark.master.scheduler.scoring import score_nodes

MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5


def num_feasible_nodes_to_find(percentage_of_nodes_to_score: int | None, num_all_nodes: int) -> int:
    """How many feasible nodes are enough: all below 100 nodes, else a share (50% - nodes/125, at least 5%)."""
    if num_all_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_all_nodes
    percentage = percentage_of_nodes_to_score or 0
    if percentage <= 0:
        percentage = max(50 - num_all_nodes // 125, MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND)
    if percentage >= 100:
        return num_all_nodes
    return max(num_all_nodes * percentage // 100, MIN_FEASIBLE_NODES_TO_FIND)


class FitError(Exception):
    """No node fits; str() is kube-scheduler's message ("0/10 nodes are available: 3 Insufficient cpu.")."""

    def __init__(self, pod_key: str, num_all_nodes: int, reasons: Counter[str], prefilter: str = "") -> None:
        self.pod_key = pod_key
        self.num_all_nodes = num_all_nodes
        self.reasons = reasons
        self.prefilter = prefilter
        super().__init__(fit_error_message(num_all_nodes, reasons, prefilter))


def fit_error_message(num_all_nodes: int, reasons: Counter[str], prefilter: str = "") -> str:
    """FitError.Error(): a PreFilter plugin's rejection is said once, not counted per node."""
    message = f"0/{num_all_nodes} nodes are available:"
    if prefilter:
        return f"{message} {prefilter}."
    histogram = sorted(f"{count} {reason}" for reason, count in reasons.items())
    if histogram:
        message += f" {', '.join(histogram)}."
    return message


@dataclass(slots=True)
class ScheduleResult:
    node: str
    evaluated_nodes: int
    feasible_nodes: int


class ScheduleAlgorithm:
    """Holds the rotating start index between pods; everything else comes from the cache per call."""

    def __init__(self, percentage_of_nodes_to_score: int | None = None, rng: random.Random | None = None) -> None:
        self.percentage_of_nodes_to_score = percentage_of_nodes_to_score
        self.next_start_index = 0
        self._rng = rng or random.Random()

    def schedule(
        self, pod: PodInfo, cache: SchedulerCache, extra_filter: Callable[[NodeInfo], list[str] | None] | None = None
    ) -> ScheduleResult:
        """Pick a node for `pod` or raise FitError. `extra_filter` (VolumeBinding's Filter) runs on each node the
        built-in filters pass: None admits it, a list gives the reasons it does not fit."""
        names = cache.node_names()
        total = len(names)
        if total == 0:
            raise FitError(pod.key, 0, Counter())
        want = num_feasible_nodes_to_find(self.percentage_of_nodes_to_score, total)
        state = affinity_state(pod, cache) if cache.anti_affinity_pods or pod.has_affinity_constraints else None
        nodes = cache.nodes
        feasible: list[NodeInfo] = []
        reasons: Counter[str] = Counter()
        start = self.next_start_index % total
        processed = 0
        # A plain pod on a plain node needs only the resource check: done inline, it is most of the work.
        plain = pod.plain and (state is None or state.empty) and extra_filter is None
        req = pod.requests
        cpu, mem, eph = req.milli_cpu, req.memory, req.ephemeral_storage
        for name in names[start:] + names[:start] if start else names:
            node = nodes[name]
            processed += 1
            if plain and node.plain:
                alloc, used = node.allocatable, node.requested
                if (
                    len(node.pods) < alloc.pods
                    and (cpu == 0 or cpu <= alloc.milli_cpu - used.milli_cpu)
                    and (mem == 0 or mem <= alloc.memory - used.memory)
                    and (eph == 0 or eph <= alloc.ephemeral_storage - used.ephemeral_storage)
                ):
                    feasible.append(node)
                    if len(feasible) >= want:
                        break
                    continue
            failed = filter_node(pod, node, state)
            if failed is None and extra_filter is not None:
                failed = extra_filter(node)
            if failed is None:
                feasible.append(node)
                if len(feasible) >= want:
                    break
            else:
                reasons.update(failed)
        self.next_start_index = (start + processed) % total
        if not feasible:
            raise FitError(pod.key, total, reasons)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, processed, 1)
        scores = score_nodes(pod, feasible)
        return ScheduleResult(self._select_host(feasible, scores), processed, len(feasible))

    def _select_host(self, nodes: list[NodeInfo], scores: list[int]) -> str:
        """The highest score; ties broken uniformly at random (reservoir sampling, as upstream)."""
        best = -1
        chosen = nodes[0].name
        ties = 0
        rng = self._rng
        for node, score in zip(nodes, scores, strict=True):
            if score > best:
                best, chosen, ties = score, node.name, 1
            elif score == best:
                ties += 1
                if rng.random() * ties < 1:
                    chosen = node.name
        return chosen
