"""ProcessSampler: /proc parsing (a fake /proc with a tricky command name) and sampling this very process."""

from __future__ import annotations

import os
from pathlib import Path

from kubemark.measure.resource_usage import ProcessSampler, read_cpu_seconds, read_rss_bytes


def test_parses_stat_with_spaces_in_the_command(tmp_path: Path) -> None:
    d = tmp_path / "42"
    d.mkdir()
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S"] + ["0"] * 10 + [str(3 * ticks), str(ticks)] + ["0"] * 30
    (d / "stat").write_text("42 (etcd (x) y) " + " ".join(fields) + "\n")
    (d / "status").write_text("Name:\tetcd\nVmRSS:\t   2048 kB\n")
    assert read_cpu_seconds(42, tmp_path) == 4.0
    assert read_rss_bytes(42, tmp_path) == 2048 * 1024


async def test_samples_this_process_and_drops_vanished_pids(tmp_path: Path) -> None:
    times = iter([100.0, 101.0, 102.0])
    sampler = ProcessSampler({"me": os.getpid(), "gone": 2**22 + 12345}, clock=lambda: next(times))
    sampler.sample_once()
    assert "gone" not in sampler.components
    sum(i * i for i in range(200_000))  # burn a little CPU between samples
    sampler.sample_once()
    [sample] = sampler.samples
    assert sample.component == "me"
    assert sample.cpu_cores >= 0
    assert sample.memory_bytes > 10 * 1024 * 1024


def _fake_process(proc: Path, pid: int, cpu_seconds: float, rss_kb: int) -> None:
    d = proc / str(pid)
    d.mkdir(exist_ok=True)
    ticks = os.sysconf("SC_CLK_TCK")
    fields = ["S"] + ["0"] * 10 + [str(int(cpu_seconds * ticks)), "0"] + ["0"] * 30
    (d / "stat").write_text(f"{pid} (python) " + " ".join(fields) + "\n")
    (d / "status").write_text(f"Name:\tpython\nVmRSS:\t{rss_kb} kB\n")


def test_a_component_of_several_processes_adds_them_up(tmp_path: Path) -> None:
    times = iter([10.0, 12.0, 14.0, 16.0])
    _fake_process(tmp_path, 1, 5.0, 1000)
    _fake_process(tmp_path, 2, 1.0, 3000)
    sampler = ProcessSampler({"kube-apiserver": (1, 2), "etcd": 3}, clock=lambda: next(times), proc=tmp_path)
    sampler.sample_once()
    assert "etcd" not in sampler.components  # no such process
    _fake_process(tmp_path, 1, 6.0, 1000)
    _fake_process(tmp_path, 2, 3.0, 3000)
    sampler.sample_once()
    [sample] = sampler.samples
    assert sample.cpu_cores == (1.0 + 2.0) / 2.0
    assert sample.memory_bytes == 4000 * 1024
    # One process goes away: no sample from a sum that lost a member, then the survivor alone.
    (tmp_path / "2" / "stat").unlink()
    sampler.sample_once()
    assert len(sampler.samples) == 1 and sampler.components["kube-apiserver"] == (1,)
    _fake_process(tmp_path, 1, 8.0, 1000)
    sampler.sample_once()
    assert sampler.samples[-1].cpu_cores == 1.0 and sampler.samples[-1].memory_bytes == 1000 * 1024
