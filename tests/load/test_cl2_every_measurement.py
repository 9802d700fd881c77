"""`kubemark run --nodes 3 --test <file>` on a test of our own in clusterloader2's format that uses every
measurement issue 19 names, every tuning-set kind and the object kinds of clusterloader2's load test, on the
embedded master: every step executes, every barrier is met, the PerfData files carry clusterloader2's names, the
verdicts are reported, and what cannot be measured on hollow nodes says so. A second test: a failed step does
not end the run (clusterloader2 runs every step and reports each one's errors)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kubemark import codec

pytestmark = pytest.mark.etcd

CONFIG = """\
{{$NODES := .Nodes}}
{{$NAMESPACES := DefaultParam .CL2_NAMESPACES 2}}
{{$JOB_SLEEP := MaxInt 1 (DivideInt 5 $NODES)}}
name: every-measurement
namespace:
  number: {{$NAMESPACES}}
  prefix: every
tuningSets:
- {name: Qps, qpsLoad: {qps: 20}}
- {name: Randomized, randomizedLoad: {averageQps: 20}}
- {name: Stepped, steppedLoad: {burstSize: 2, stepDelay: 100ms}}
- {name: TimeLimited, timeLimitedLoad: {timeLimit: 500ms}}
- {name: RandomizedTimeLimited, randomizedTimeLimitedLoad: {timeLimit: 500ms}}
- {name: Parallel, parallelismLimitedLoad: {parallelismLimit: 2}}
- {name: Global, globalQPSLoad: {qps: 20, burst: 2}}
- {name: Poisson, poissonLoad: {expectedActionsPerSecond: 20}}
steps:
- name: Start measurements
  measurements:
  - {Identifier: TestMetrics, Method: TestMetrics, Params: {action: start, systemPodMetricsEnabled: true}}
  - {Identifier: APIAvailability, Method: APIAvailability, Params: {action: start, pollFrequency: 1s}}
  - {Identifier: ContainerRestarts, Method: ContainerRestarts, Params: {action: start}}
  - {Identifier: NetworkProgrammingLatency, Method: NetworkProgrammingLatency, Params: {action: start}}
  - {Identifier: JobLifecycleLatency, Method: JobLifecycleLatency, Params: {action: start, labelSelector: group = every-job}}
  - {Identifier: NodeHealthTracker, Method: NodeHealthTracker, Params: {action: start}}
  - {Identifier: PodStartupLatency, Method: PodStartupLatency, Params: {action: start, labelSelector: group = every, threshold: 30s}}
  - {Identifier: SchedulingThroughput, Method: SchedulingThroughput, Params: {action: start}}
  - {Identifier: APIResponsiveness, Method: APIResponsivenessPrometheus, Params: {action: start}}
  - {Identifier: EtcdMetrics, Method: EtcdMetrics, Params: {action: start}}
  - {Identifier: SchedulingMetrics, Method: SchedulingMetrics, Params: {action: reset}}
  - {Identifier: InClusterNetworkLatency, Method: InClusterNetworkLatency, Params: {action: start}}
  - {Identifier: PodPeriodicCommand, Method: PodPeriodicCommand, Params: {action: start}}
  - {Identifier: ServiceCreationLatency, Method: ServiceCreationLatency, Params: {action: start}}
{{range $kind := StringSplit "Deployment,StatefulSet,DaemonSet"}}
  - Identifier: Wait{{$kind}}s
    Method: WaitForControlledPodsRunning
    Params: {action: start, apiVersion: apps/v1, kind: {{$kind}}, labelSelector: group = every, operationTimeout: 2m}
{{end}}
  - {Identifier: WaitForFinishedJobs, Method: WaitForFinishedJobs, Params: {action: start, labelSelector: group = every-job}}
- name: Create objects
  phases:
  - {replicasPerNamespace: 1, tuningSet: Qps, objectBundle: [{basename: every-priority, objectTemplatePath: priorityclass.yaml}]}
  - namespaceRange: {min: 1, max: {{$NAMESPACES}}}
    replicasPerNamespace: 2
    tuningSet: Qps
    objectBundle:
    - {basename: every-config, objectTemplatePath: configmap.yaml}
    - {basename: every-deployment, objectTemplatePath: deployment.yaml, templateFillMap: {Replicas: 2}}
    - {basename: every-deployment, objectTemplatePath: service.yaml}
    - {basename: every-deployment, objectTemplatePath: pdb.yaml}
  - namespaceRange: {min: 1, max: {{$NAMESPACES}}}
    replicasPerNamespace: 1
    tuningSet: Randomized
    objectBundle:
    - {basename: every-sts, objectTemplatePath: headless.yaml}
    - {basename: every-sts, objectTemplatePath: statefulset.yaml, templateFillMap: {Replicas: 2}}
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 1
    tuningSet: Stepped
    objectBundle:
    - {basename: every-ds, objectTemplatePath: daemonset.yaml}
  - namespaceRange: {min: 1, max: {{$NAMESPACES}}}
    replicasPerNamespace: 2
    tuningSet: TimeLimited
    objectBundle:
    - {basename: every-job, objectTemplatePath: job.yaml, templateFillMap: {Sleep: {{$JOB_SLEEP}}}}
  - namespaceRange: {min: 1, max: {{$NAMESPACES}}}
    replicasPerNamespace: 2
    tuningSet: RandomizedTimeLimited
    objectBundle:
    - {basename: every-secret, objectTemplatePath: secret.yaml}
  - namespaceRange: {min: 1, max: {{$NAMESPACES}}}
    replicasPerNamespace: 2
    tuningSet: Parallel
    objectBundle:
    - {basename: every-policy, objectTemplatePath: networkpolicy.yaml}
- name: Wait for objects
  measurements:
{{range $kind := StringSplit "Deployment,StatefulSet,DaemonSet"}}
  - {Identifier: Wait{{$kind}}s, Method: WaitForControlledPodsRunning, Params: {action: gather}}
{{end}}
  - {Identifier: WaitForFinishedJobs, Method: WaitForFinishedJobs, Params: {action: gather, timeout: 2m}}
- name: Check objects
  measurements:
  # per namespace 2 deployments x 2 replicas + 1 statefulset x 2; one DaemonSet pod per node
  - Identifier: WaitForRunningPods
    Method: WaitForRunningPods
    Params: {desiredPodCount: {{AddInt (MultiplyInt $NAMESPACES 6) $NODES}}, labelSelector: group = every, timeout: 1m}
  - Identifier: WaitForAvailableDeployments
    Method: WaitForGenericK8sObjects
    Params:
      objectGroup: apps
      objectVersion: v1
      objectResource: deployments
      namespaceRange: {min: 1, max: {{$NAMESPACES}}}
      successfulConditions: ["Available=True"]
      failedConditions: ["ReplicaFailure=True"]
      minDesiredObjectCount: {{MultiplyInt $NAMESPACES 2}}
      maxFailedObjectCount: 0
      timeout: 2m
  - {Identifier: WaitForNodes, Method: WaitForNodes, Params: {minDesiredNodeCount: {{$NODES}}, maxDesiredNodeCount: {{$NODES}}, timeout: 1m}}
- name: Delete objects
  phases:
  - namespaceRange: {min: 1, max: {{$NAMESPACES}}}
    replicasPerNamespace: 0
    tuningSet: Global
    objectBundle:
    - {basename: every-deployment, objectTemplatePath: deployment.yaml}
    - {basename: every-deployment, objectTemplatePath: service.yaml}
    - {basename: every-deployment, objectTemplatePath: pdb.yaml}
  - namespaceRange: {min: 1, max: {{$NAMESPACES}}}
    replicasPerNamespace: 0
    tuningSet: Poisson
    objectBundle:
    - {basename: every-sts, objectTemplatePath: headless.yaml}
    - {basename: every-sts, objectTemplatePath: statefulset.yaml}
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 0
    tuningSet: Qps
    objectBundle:
    - {basename: every-ds, objectTemplatePath: daemonset.yaml}
- name: Wait for deletion
  measurements:
{{range $kind := StringSplit "Deployment,StatefulSet,DaemonSet"}}
  - {Identifier: Wait{{$kind}}s, Method: WaitForControlledPodsRunning, Params: {action: gather}}
{{end}}
- name: Gather measurements
  measurements:
  - {Identifier: TestMetrics, Method: TestMetrics, Params: {action: gather, systemPodMetricsEnabled: true}}
  - {Identifier: APIAvailability, Method: APIAvailability, Params: {action: gather}}
  - {Identifier: ContainerRestarts, Method: ContainerRestarts, Params: {action: gather, enableViolations: true}}
  - {Identifier: NetworkProgrammingLatency, Method: NetworkProgrammingLatency, Params: {action: gather}}
  - {Identifier: JobLifecycleLatency, Method: JobLifecycleLatency, Params: {action: gather}}
  - {Identifier: NodeHealthTracker, Method: NodeHealthTracker, Params: {action: gather}}
  - {Identifier: PodStartupLatency, Method: PodStartupLatency, Params: {action: gather}}
  - {Identifier: SchedulingThroughput, Method: SchedulingThroughput, Params: {action: gather}}
  - {Identifier: APIResponsiveness, Method: APIResponsivenessPrometheus, Params: {action: gather, enableViolations: true}}
  - {Identifier: EtcdMetrics, Method: EtcdMetrics, Params: {action: gather}}
  - {Identifier: SchedulingMetrics, Method: SchedulingMetrics, Params: {action: gather}}
  - {Identifier: MetricsForE2E, Method: MetricsForE2E, Params: {action: gather}}
  - {Identifier: InClusterNetworkLatency, Method: InClusterNetworkLatency, Params: {action: gather}}
  - {Identifier: PodPeriodicCommand, Method: PodPeriodicCommand, Params: {action: gather}}
  - {Identifier: ServiceCreationLatency, Method: ServiceCreationLatency, Params: {action: gather}}
"""

POD_SPEC = """\
      containers:
      - name: pause
        image: registry.k8s.io/pause:3.9
        resources: {requests: {cpu: 5m, memory: 5M}}
"""

TEMPLATES = {
    "priorityclass.yaml": "apiVersion: scheduling.k8s.io/v1\nkind: PriorityClass\nmetadata: {name: {{.Name}}}\n"
    "value: 1000\n",
    "configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{.Name}}}\n"
    "data:\n  blob: {{YamlQuote (RandData 64) 4}}\n",
    "secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: {{.Name}}}\ntype: Opaque\n"
    "stringData: {password: {{RandDataWithSeed 16 .Name}}}\n",
    "deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{.Name}}, labels: {group: every}}
spec:
  replicas: {{.Replicas}}
  selector: {matchLabels: {name: {{.Name}}}}
  template:
    metadata: {labels: {name: {{.Name}}, group: every}}
    spec:
      priorityClassName: every-priority-0
"""
    + POD_SPEC,
    "service.yaml": """\
apiVersion: v1
kind: Service
metadata: {name: {{.Name}}}
spec:
  selector: {name: {{.Name}}}
  ports: [{port: 80, targetPort: 80}]
""",
    "pdb.yaml": """\
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: {{.Name}}}
spec:
  minAvailable: 1
  selector: {matchLabels: {name: {{.Name}}}}
""",
    "headless.yaml": """\
apiVersion: v1
kind: Service
metadata: {name: {{.Name}}}
spec:
  clusterIP: None
  selector: {name: {{.Name}}}
  ports: [{port: 80, name: web}]
""",
    "statefulset.yaml": """\
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: {{.Name}}, labels: {group: every}}
spec:
  serviceName: {{.Name}}
  replicas: {{.Replicas}}
  podManagementPolicy: Parallel
  selector: {matchLabels: {name: {{.Name}}}}
  template:
    metadata: {labels: {name: {{.Name}}, group: every}}
    spec:
"""
    + POD_SPEC,
    "daemonset.yaml": """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: {{.Name}}, labels: {group: every}}
spec:
  selector: {matchLabels: {name: {{.Name}}}}
  template:
    metadata: {labels: {name: {{.Name}}, group: every}}
    spec:
"""
    + POD_SPEC,
    "job.yaml": """\
apiVersion: batch/v1
kind: Job
metadata: {name: {{.Name}}, labels: {group: every-job}}
spec:
  completions: 2
  parallelism: 2
  template:
    metadata: {labels: {group: every-job}}
    spec:
      restartPolicy: Never
      containers:
      - name: sleep
        image: registry.k8s.io/e2e-test-images/busybox:1.36.1-1
        command: ["sleep", "{{.Sleep}}"]
""",
    "networkpolicy.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: {{.Name}}}
spec:
  podSelector: {matchLabels: {name: {{.Name}}}}
  policyTypes: [Ingress]
  ingress: [{from: [{podSelector: {}}]}]
""",
}


def _run(tmp_path: Path, config: str, templates: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], Path]:
    for name, text in templates.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "config.yaml").write_text(config)
    out = tmp_path / "run"
    args = ["run", "--nodes", "3", "--test", str(tmp_path / "config.yaml"), "--out", str(out), "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-m", "kubemark", *args],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return proc, out


def _perfdata_names(out: Path, test: str) -> set[str]:
    """clusterloader2's file names: <summary name>_<test name>_<RFC 3339 time>.json."""
    pattern = re.compile(rf"(.+)_{re.escape(test)}_\d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\.json")
    return {m.group(1) for p in out.iterdir() if (m := pattern.fullmatch(p.name))}


@pytest.mark.timeout(450)
def test_every_measurement_tuning_set_and_load_kind_in_clusterloader2_format(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, CONFIG, TEMPLATES)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    summary: dict[str, Any] = codec.loads((out / "summary.json").read_bytes())
    steps = {s["name"]: s["error"] for s in summary["steps"]}
    assert list(steps)[-7:] == [
        "Start measurements",
        "Create objects",
        "Wait for objects",
        "Check objects",
        "Delete objects",
        "Wait for deletion",
        "Gather measurements",
    ], steps
    assert set(steps.values()) == {""}, steps  # every barrier met, every gather answered

    names = _perfdata_names(out, "every-measurement")
    for expected in (
        "EtcdMetrics",
        "SchedulingMetrics",
        "MetricsForE2E",
        "ResourceUsageSummary",
        "SystemPodMetrics",
        "APIAvailability",
        "ContainerRestarts",
        "NetworkProgrammingLatency",
        "JobLifecycleLatency_JobLifecycleLatency",
        "NodeHealthTracker",
        "PodStartupLatency_PodStartupLatency",
        "SchedulingThroughput",
        "APIResponsivenessPrometheus",
    ):
        assert expected in names, (expected, sorted(names))

    # The jobs really ran on hollow nodes: their pods slept 1 s (DivideInt 5 3 = 1), so each job took at least
    # that from start to completion (clusterloader2's times have one-second granularity).
    job_file = next(out.glob("JobLifecycleLatency_JobLifecycleLatency_every-measurement_*.json"))
    job_items = {i["labels"]["Metric"]: i for i in codec.loads(job_file.read_bytes())["dataItems"]}
    assert set(job_items) == {"create_to_start", "start_to_complete"}, job_items
    assert job_items["start_to_complete"]["data"]["Perc50"] >= 1000, job_items

    verdicts = {v["name"]: v for v in summary["verdicts"]}
    assert verdicts, summary
    for name in ("node_health", "pod_startup_latency", "api_availability", "container_restarts"):
        assert verdicts[name]["passed"], verdicts[name]
    assert any(name.startswith("api_call_latency POST statefulsets") for name in verdicts), sorted(verdicts)

    # What has no meaning on hollow nodes says so: never a silent pass.
    warned = {w["method"] for w in summary["warnings"]}
    assert {"InClusterNetworkLatency", "PodPeriodicCommand", "ServiceCreationLatency", "CPUProfile"} <= warned
    assert "EtcdMetrics" not in warned  # on etcd storage the run reads etcd's /metrics
    assert "not measured here" in proc.stdout + proc.stderr


FAILING_CONFIG = """\
name: failing-step
namespace: {number: 1, prefix: failing}
tuningSets: [{name: Qps, qpsLoad: {qps: 10}}]
steps:
- name: Start
  measurements:
  - {Identifier: APIAvailability, Method: APIAvailability, Params: {action: start, pollFrequency: 1s}}
- name: Create an invalid object
  phases:
  - namespaceRange: {min: 1, max: 1}
    replicasPerNamespace: 1
    tuningSet: Qps
    objectBundle: [{basename: bad, objectTemplatePath: bad.yaml}]
- name: Gather
  measurements:
  - {Identifier: APIAvailability, Method: APIAvailability, Params: {action: gather}}
"""

BAD_CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{.Name}}, labels: {bad: 'not a label!'}}\n"


@pytest.mark.timeout(200)
def test_a_failed_step_is_reported_and_the_later_steps_still_run(tmp_path: Path) -> None:
    proc, out = _run(tmp_path, FAILING_CONFIG, {"bad.yaml": BAD_CONFIGMAP})
    assert proc.returncode == 1, proc.stderr[-3000:]
    steps = {s["name"]: s["error"] for s in codec.loads((out / "summary.json").read_bytes())["steps"]}
    assert "422" in steps["Create an invalid object"] or "Invalid" in steps["Create an invalid object"], steps
    assert steps["Gather"] == "", steps
    assert "APIAvailability" in _perfdata_names(out, "failing-step")
