"""One /metrics for an API server that runs as several processes: their Prometheus texts merged.

Counters, histograms and summaries add up across processes, and so do most gauges (requests in flight,
registered watchers, CPU seconds, resident memory). The exceptions are values every process reports about the
same thing or as a limit: stored object counts (each process caches every object) and limits take the maximum,
start times and `_created` stamps the minimum. clusterloader2-style measurements then read the merged text
exactly as they read one kube-apiserver's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

_MAX = frozenset({"apiserver_storage_objects", "process_max_fds", "process_virtual_memory_max_bytes"})
_MIN = frozenset({"process_start_time_seconds"})


def _combine(sample_name: str, family: str, a: float, b: float) -> float:
    if family in _MAX:
        return max(a, b)
    if family in _MIN or sample_name.endswith("_created"):
        return min(a, b)
    return a + b


class _Merged(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families


def merge_texts(texts: Iterable[str]) -> bytes:
    """The Prometheus text format (0.0.4) of the merged metric families of `texts`."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            merged = families.get(family.name)
            if merged is None:
                merged = families[family.name] = Metric(family.name, family.documentation, family.type, family.unit)
                values[family.name] = {}
            slot = values[family.name]
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                old = slot.get(key)
                slot[key] = sample.value if old is None else _combine(sample.name, family.name, old, sample.value)
    for name, family in families.items():
        family.samples = [Sample(s_name, dict(labels), value) for (s_name, labels), value in values[name].items()]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Merged(list(families.values())))
    return generate_latest(registry)
