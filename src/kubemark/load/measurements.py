"""The measurement steps of a test config, dispatched to the registered measurements by Identifier.

A step's measurement with `action: start` makes the Method's measurement (kubemark.measure.registry) and starts
it; `action: gather` gathers it (with the start's Params under the gather's); no action does both at once (only
meaningful for Sleep and the barriers). Results merge into `MeasurementSet.result`. `finish()` gathers whatever
is still running without waiting on barriers, so an interrupted or failed run still reports what it measured.
Measurements that were not measured here (see kubemark.measure.catalog) come back as warnings in the result;
each is logged once, so the terminal says so as the run goes.

Any other action (Timer's `stop`, NodeHealthTracker's `stop`, APIResponsiveness' `reset`) goes to the
measurement's `act`, on the running instance, or on a new one as clusterloader2 makes an instance on its first
call whatever the action; it gets that step's Params only (Timer's `stop` names its own `label`). A Method that
lists its `actions` has them checked by `validate_measurements`; an action a Method without that list does not
take is logged and ignored; a not-measured-here Method takes every action (its gather says it was not measured).
`stop` ends a measurement that is not stateful (NodeHealthTracker): a later gather finds it not started.
A `stateful` measurement (Timer) keeps its one instance: a second start goes to it, and a gather leaves it running.
"""

from __future__ import annotations

import asyncio
import contextlib
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

__all__ = ["MeasurementSet", "StepErrors", "validate_measurements"]

log = logging.getLogger(__name__)

_DURATION_PARAMS = ("threshold", "operationTimeout", "timeout", "duration", "samplingInterval")


class StepErrors(Exception):
    """More than one measurement of a step failed; the message lists each."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


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
            problems.extend((f"{where}.{key}", msg) for key, msg in _check_action(m, registry.get(m.method)))
            for key in _DURATION_PARAMS:
                if key in m.params:
                    try:
                        parse_duration(m.params[key])
                    except ValueError as exc:
                        problems.append((f"{where}.Params.{key}", str(exc)))
    if problems:
        raise ConfigError(config.name, problems)


def _check_action(m: MeasurementStep, kind: type[Measurement] | None) -> list[tuple[str, str]]:
    """The action of a step against the actions its Method lists (if it lists them), and the Method's own checks."""
    if kind is None:
        return []
    accepted: frozenset[str] | None = getattr(kind, "actions", None)
    if accepted is not None and m.action not in accepted:
        known = ", ".join(sorted(accepted))
        if m.action is None:
            return [("Params.action", f"{m.method} needs an action ({known})")]
        return [("Params.action", f'{m.method} has no action "{m.action}" (known: {known})')]
    check = getattr(kind, "check_params", None)
    return [(f"Params.{key}", msg) for key, msg in check(m.action, m.params)] if check is not None else []


class MeasurementSet:
    """The running measurements of one test, by Identifier, and what the finished ones produced."""

    def __init__(self, ctx: MeasureContext, registry: Mapping[str, type[Measurement]] = MEASUREMENTS) -> None:
        self.ctx = ctx
        self.registry = registry
        self.running: dict[str, Measurement] = {}
        self.result = MeasurementResult()
        self._params: dict[str, dict[str, Any]] = {}  # identifier -> the Params it was started with
        self._gathered: set[str] = set()  # stateful measurements gathered at least once (finish leaves them)

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
        if m.action not in (None, "start", "gather"):
            await self._act(m, str(m.action))

    async def execute_all(self, measurements: list[MeasurementStep]) -> None:
        """The measurements of one step, concurrently (as clusterloader2 runs them): every one runs to its end
        even when another fails, and the step's error names each that failed."""
        outcomes = await asyncio.gather(*(self.execute(m) for m in measurements), return_exceptions=True)
        failed = [(m, e) for m, e in zip(measurements, outcomes, strict=True) if isinstance(e, BaseException)]
        for _, exc in failed:
            if isinstance(exc, asyncio.CancelledError):
                raise exc
        if len(failed) == 1:
            raise failed[0][1]
        if failed:
            raise StepErrors([f"{m.identifier}: {_describe(exc)}" for m, exc in failed])

    async def _start(self, m: MeasurementStep) -> None:
        kind = self.registry[m.method]
        running = self.running.get(m.identifier)
        if running is not None:
            if kind.barrier:
                return  # already tracking: clusterloader2 configs re-start before each wait
            if getattr(kind, "stateful", False):
                await running.start(m.params)  # the same instance, as clusterloader2 (Timer: another label)
                return
            log.warning("measurement %s started twice; restarting it", m.identifier)
            await running.stop()
        measurement = kind(m.identifier, self.ctx)
        self.running[m.identifier] = measurement
        try:
            await measurement.start(m.params)
        except BaseException:
            # Not started: a later gather says so (clusterloader2: "metric ... has not been started").
            self.running.pop(m.identifier, None)
            with contextlib.suppress(Exception):
                await measurement.stop()
            raise

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
        if getattr(measurement, "stateful", False):
            self._gathered.add(identifier)
            self._merge(await measurement.gather(params))
            return  # stays running until the test ends, as clusterloader2's instances do
        del self.running[identifier]
        try:
            self._merge(await measurement.gather(params))
        finally:
            await measurement.stop()

    async def _act(self, m: MeasurementStep, action: str) -> None:
        """An action other than start and gather, on the running instance (made now if there is none)."""
        kind = self.registry[m.method]
        if issubclass(kind, NotMeasuredHere):
            return  # accepted; its gather reports that it was not measured
        accepted: frozenset[str] | None = getattr(kind, "actions", None)
        if accepted is None or action not in accepted:
            log.warning(
                "measurement %s (%s): action %r is not supported by kubemark; ignored", m.identifier, m.method, action
            )
            return
        measurement = self.running.get(m.identifier)
        if measurement is None:
            measurement = kind(m.identifier, self.ctx)
            self.running[m.identifier] = measurement
        result = await measurement.act(action, m.params)  # type: ignore[attr-defined]
        if result is not None:
            self._merge(result)
        if action == "stop" and not getattr(kind, "stateful", False):
            del self.running[m.identifier]  # stopped for good (NodeHealthTracker): nothing left for finish
            await measurement.stop()

    async def finish(self) -> None:
        """Gather everything still running (barriers are not waited on), stop it, and stop the shared watches."""
        running, self.running = self.running, {}
        for identifier, measurement in running.items():
            try:
                if not measurement.barrier and identifier not in self._gathered:
                    self._merge(await measurement.gather(self._params.get(identifier, {})))
            except Exception:
                log.exception("gathering %s failed", identifier)
            try:
                await measurement.stop()
            except Exception:
                log.exception("stopping %s failed", identifier)
        await self.ctx.close()
