"""The scheduler (kube-scheduler equivalent): informers, queue, cache, filter/score, asynchronous binding.

scheduler = Scheduler(client, metrics_port=0)
await scheduler.start(); await scheduler.wait_synced(30)
...
await scheduler.stop()
"""

from kubemark.master.scheduler.algorithm import FitError, ScheduleAlgorithm, num_feasible_nodes_to_find
from kubemark.master.scheduler.command import run_scheduler
from kubemark.master.scheduler.scheduler import Scheduler

__all__ = ["FitError", "ScheduleAlgorithm", "Scheduler", "num_feasible_nodes_to_find", "run_scheduler"]
