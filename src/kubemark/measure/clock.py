"""Clock skew between this machine and the API server, bounded honestly.

Latency SLIs mix server timestamps (creationTimestamp) with local watch receive times, so a skewed clock shifts
them all (a "9h58m" p50 has happened). The server's clocks are visible only with 1 s precision (the Date header
and metadata.creationTimestamp are truncated to whole seconds), so one observation gives an *interval* for the
offset: the server read its clock at some local time l in [sent, received], and its time s lies in
[stamp, stamp + resolution). Hence offset = s - l lies in (stamp - received, stamp + resolution - sent).
Intersecting the intervals of several observations taken at different sub-second phases narrows the bound.

We warn when the skew is proven above 100 ms and refuse latency SLIs when it is proven above 1 s: with only
1 s precision an unproven skew is not evidence of one.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kubemark.kube.meta import parse_rfc3339

if TYPE_CHECKING:
    from kubemark.client.rest import RestClient

__all__ = ["SkewCheck", "SkewSample", "assess_skew", "parse_http_date", "probe_clock_skew"]

log = logging.getLogger(__name__)

WARN_ABOVE = 0.1
REFUSE_ABOVE = 1.0


@dataclass(frozen=True, slots=True)
class SkewSample:
    """One server clock reading: local unix times around the request, and the server's truncated stamp."""

    sent: float
    received: float
    server_time: float
    resolution: float = 1.0  # the stamp is truncated to this many seconds
    source: str = "date"  # "date" (HTTP Date header) or "creationTimestamp"

    def bounds(self) -> tuple[float, float]:
        """Offset (server - local) interval this sample allows."""
        return self.server_time - self.received, self.server_time + self.resolution - self.sent


@dataclass(frozen=True, slots=True)
class SkewCheck:
    offset_low: float  # server - local, seconds (positive: server ahead)
    offset_high: float
    samples: int
    consistent: bool  # False if the samples' intervals did not overlap (a clock jumped mid-probe)
    level: Literal["ok", "warn", "refuse"]
    message: str

    @property
    def min_skew(self) -> float:
        """The skew we can prove: the distance from 0 to the offset interval."""
        if self.offset_low <= 0 <= self.offset_high:
            return 0.0
        return min(abs(self.offset_low), abs(self.offset_high))

    @property
    def max_skew(self) -> float:
        return max(abs(self.offset_low), abs(self.offset_high))

    @property
    def latency_slis_trusted(self) -> bool:
        return self.level != "refuse"

    def as_dict(self) -> dict[str, object]:
        return {
            "offset_low": self.offset_low,
            "offset_high": self.offset_high,
            "samples": self.samples,
            "consistent": self.consistent,
            "level": self.level,
            "message": self.message,
        }


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if abs(seconds) < 1 else f"{seconds:.2f} s"


def assess_skew(
    samples: Sequence[SkewSample], *, warn_above: float = WARN_ABOVE, refuse_above: float = REFUSE_ABOVE
) -> SkewCheck:
    """Bound the offset from the samples and decide: ok, warn (skew > warn_above) or refuse (> refuse_above)."""
    if not samples:
        raise ValueError("no clock samples")
    bounds = [s.bounds() for s in samples]
    low = max(b[0] for b in bounds)
    high = min(b[1] for b in bounds)
    consistent = low <= high
    if not consistent:
        # Disjoint intervals mean a clock stepped during the probe; fall back to the hull, which is still true
        # of every sample taken, and say so.
        low = min(b[0] for b in bounds)
        high = max(b[1] for b in bounds)
    check = SkewCheck(low, high, len(samples), consistent, "ok", "")
    proven = check.min_skew
    direction = "ahead of" if low > 0 else "behind"
    where = f"offset server-local in [{_fmt(low)}, {_fmt(high)}] from {len(samples)} samples" + (
        "" if consistent else ", samples disagree: a clock stepped during the probe"
    )
    if proven > refuse_above:
        level: Literal["ok", "warn", "refuse"] = "refuse"
        message = (
            f"the API server clock is at least {_fmt(proven)} {direction} this machine ({where}); latency SLIs "
            f"compare server timestamps with local watch times and would be off by that much, so they are not "
            f"reported. Synchronise the clocks (NTP) and run again."
        )
    elif proven > warn_above:
        level = "warn"
        message = (
            f"the API server clock is at least {_fmt(proven)} {direction} this machine ({where}); latencies that "
            f"mix server and local times are biased by up to {_fmt(check.max_skew)}."
        )
    else:
        level = "ok"
        message = f"no clock skew above {_fmt(warn_above)} proven ({where})"
    return SkewCheck(low, high, len(samples), consistent, level, message)


def parse_http_date(value: str) -> float:
    """Unix seconds from an HTTP Date header (RFC 9110 IMF-fixdate)."""
    return email.utils.parsedate_to_datetime(value).timestamp()


_FRACTION = re.compile(r"T\d\d:\d\d:\d\d\.(\d+)")


def _precision(stamp: str) -> float:
    # The master may keep sub-second precision; only a stamp without a fraction is truncated to 1 s.
    m = _FRACTION.search(stamp)
    return 10.0 ** -len(m.group(1)) if m else 1.0


async def probe_clock_skew(
    client: RestClient,
    *,
    namespace: str = "default",
    rounds: int = 4,
    spacing: float = 0.27,
    wall: Callable[[], float] = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    warn_above: float = WARN_ABOVE,
    refuse_above: float = REFUSE_ABOVE,
) -> SkewCheck:
    """Create+read+delete a ConfigMap `rounds` times, `spacing` s apart (different sub-second phases narrow the
    bound), sampling creationTimestamp and the Date header, and assess the skew."""
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    samples: list[SkewSample] = []
    for i in range(rounds):
        if i:
            await sleep(spacing)
        sent = wall()
        obj = await client.create(
            base, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "kubemark-clock-"}}
        )
        received = wall()
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        try:
            stamp = meta.get("creationTimestamp")
            if stamp:
                samples.append(SkewSample(sent, received, parse_rfc3339(stamp), _precision(stamp), "creationTimestamp"))
            sent = wall()
            async with client.stream(f"{base}/{name}") as resp:
                received = wall()
                date = resp.headers.get("Date")
            if date:
                samples.append(SkewSample(sent, received, parse_http_date(date), 1.0, "date"))
        finally:
            if name:
                await client.delete(f"{base}/{name}")
    check = assess_skew(samples, warn_above=warn_above, refuse_above=refuse_above)
    if check.level != "ok":
        log.warning("clock skew: %s", check.message)
    return check
