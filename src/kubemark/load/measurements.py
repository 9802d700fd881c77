"""The measurement steps of a test config, dispatched to the registered measurements by Identifier.

A step's measurement with `action: start` makes the Method's measurement (kubemark.measure.registry) and starts
it; `action: gather` gathers it (with the start's Params under the gather's); no action does both at once (only
meaningful for Sleep and the barriers). Results merge into `MeasurementSet.result`. `finish()` gathers whatever
is still running without waiting on barriers, so an interrupted or failed run still reports what it measured.
Measurements that were not measured here (see kubemark.measure.catalog) come back as warnings in the result;
each is logged once, so the terminal says so as the run goes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from kubemark.kube.durations import parse_duration
from kubemark.kube.labels import LabelSelectorError, parse_label_selector
from kubemark.load.config import ConfigError, TestConfig
from kubemark.load.config import Measurement as MeasurementStep
from kubemark.measure.catalog import NOT_YET
from kubemark.measure.measurement import MeasureContext, Measurement
from kubemark.measure.methods.not_measured import NotMeasuredHere
from kubemark.measure.registry import MEASUREMENTS
from kubemark.measure.results import MeasurementResult

__all__ = ["MeasurementSet", "validate_measurements"]

log = logging.getLogger(__name__)

_DURATION_PARAMS = ("threshold", "operationTimeout", "timeout", "duration", "samplingInterval")


def validate_measurements(config: TestConfig, registry: Mapping[str, type[Measurement]] = MEASUREMENTS) -> None:
    """Raise ConfigError for unknown methods and malformed durations (before any cluster is started)."""
    problems: list[tuple[str, str]] = []
    for si, step in enumerate(config.steps):
        for mi, m in enumerate(step.measurements):
            where = f"steps[{si}].measurements[{mi}]"
            if m.method in NOT_YET and m.method not in registry:
                message = f'clusterloader2 measurement "{m.method}" is not supported by kubemark: {NOT_YET[m.method]}'
                problems.append((f"{where}.Method", message))
            elif m.method not in registry:
                known = ", ".join(registry)
                problems.append((f"{where}.Method", f'unknown measurement "{m.method}" (known: {known})'))
            if "labelSelector" in m.params:
                try:
                    parse_label_selector(str(m.params["labelSelector"] or ""))
                except LabelSelectorError as exc:
                    problems.append((f"{where}.Params.labelSelector", str(exc)))
            for key in _DURATION_PARAMS:
                if key in m.params:
                    try:
                        parse_duration(m.params[key])
                    except ValueError as exc:
                        problems.append((f"{where}.Params.{key}", str(exc)))
    if problems:
        raise ConfigError(config.name, problems)


class MeasurementSet:
    """The running measurements of one test, by Identifier, and what the finished ones produced."""

    def __init__(self, ctx: MeasureContext, registry: Mapping[str, type[Measurement]] = MEASUREMENTS) -> None:
        self.ctx = ctx
        self.registry = registry
        self.running: dict[str, Measurement] = {}
        self.result = MeasurementResult()
        self._params: dict[str, dict[str, Any]] = {}  # identifier -> the Params it was started with

    def _merge(self, result: MeasurementResult) -> None:
        """Fold a gathered result in; a warning it is the first to bring is logged for the terminal."""
        for warning in result.warnings:
            if warning not in self.result.warnings:
                log.warning("%s", warning)
        self.result.merge(result)

    async def execute(self, m: MeasurementStep) -> None:
        if m.action in (None, "start"):
            await self._start(m)
            self._params[m.identifier] = dict(m.params)
        if m.action in (None, "gather"):
            await self._gather(m.identifier, m.method, {**self._params.get(m.identifier, {}), **m.params})

    async def execute_all(self, measurements: list[MeasurementStep]) -> None:
        """The measurements of one step, concurrently (as clusterloader2 runs them)."""
        await asyncio.gather(*(self.execute(m) for m in measurements))

    async def _start(self, m: MeasurementStep) -> None:
        kind = self.registry[m.method]
        running = self.running.get(m.identifier)
        if running is not None:
            if kind.barrier:
                return  # already tracking: clusterloader2 configs re-start before each wait
            log.warning("measurement %s started twice; restarting it", m.identifier)
            await running.stop()
        measurement = kind(m.identifier, self.ctx)
        self.running[m.identifier] = measurement
        await measurement.start(m.params)

    async def _gather(self, identifier: str, method: str, params: dict[str, Any]) -> None:
        measurement = self.running.get(identifier)
        if measurement is None:
            if self.registry[method].barrier:
                raise RuntimeError(f"{identifier}: gathered before it was started")
            kind = self.registry[method]
            if issubclass(kind, NotMeasuredHere):  # still say that it was not measured: never a silent pass
                self._merge(await kind(identifier, self.ctx).gather(params))
                return
            log.warning("measurement %s gathered but never started", identifier)
            return
        if measurement.barrier:
            self._merge(await measurement.gather(params))
            return  # stays running: later gathers check deletions
        del self.running[identifier]
        try:
            self._merge(await measurement.gather(params))
        finally:
            await measurement.stop()

    async def finish(self) -> None:
        """Gather everything still running (barriers are not waited on), stop it, and stop the shared watches."""
        running, self.running = self.running, {}
        for identifier, measurement in running.items():
            try:
                if not measurement.barrier:
                    self._merge(await measurement.gather(self._params.get(identifier, {})))
            except Exception:
                log.exception("gathering %s failed", identifier)
            try:
                await measurement.stop()
            except Exception:
                log.exception("stopping %s failed", identifier)
        await self.ctx.close()
