"""Batch replay engines: the local pool and Ray run the same job and give the same summary; a job
that kills its worker or runs past its time limit costs one retry, not the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vehicle_assist import paths
from vehicle_assist.replay import engine
from vehicle_assist.replay.engine import JobSpec

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _specs(tmp_path: Path, n: int) -> list[JobSpec]:
    return [JobSpec(target=str(tmp_path / f"job{i}"), out=str(tmp_path / "out" / f"job{i}")) for i in range(n)]


def _dies_once(spec: JobSpec) -> dict:
    marker = Path(spec.target + ".tried")
    if spec.name == "job1" and not marker.exists():
        marker.write_text("x")
        os._exit(3)  # the worker process dies, as a segfault in a native library would take it
    return {"name": spec.name, "passed": True, "pid": os.getpid()}


def _always_dies(spec: JobSpec) -> dict:
    if spec.name == "job0":
        os._exit(3)
    return {"name": spec.name, "passed": True}


def _hangs(spec: JobSpec) -> dict:
    if spec.name == "job2":
        time.sleep(120)
    return {"name": spec.name, "passed": True}


def test_a_killed_worker_costs_one_retry(local_ray, tmp_path):
    seen = []
    results = engine.run_ray(_specs(tmp_path, 3), job=_dies_once, on_result=seen.append)
    assert [r["name"] for r in results] == ["job0", "job1", "job2"]
    assert all(r["passed"] for r in results)
    assert [r["run"]["attempts"] for r in results] == [1, 2, 1]
    assert len(seen) == 3  # streamed back as they finished


def test_a_job_that_always_kills_its_worker_is_reported_failed_and_the_others_kept(local_ray, tmp_path):
    results = engine.run_ray(_specs(tmp_path, 3), job=_always_dies)
    assert results[0]["passed"] is False and results[0]["run"]["attempts"] == 2
    assert results[0]["error"].startswith("[job-died]")
    assert [r["passed"] for r in results[1:]] == [True, True]


def test_a_job_past_its_time_limit_is_stopped_retried_once_then_failed(local_ray, tmp_path):
    t0 = time.monotonic()
    results = engine.run_ray(_specs(tmp_path, 3), job=_hangs, time_limit_s=3)
    assert time.monotonic() - t0 < 60  # never hangs
    assert results[2]["passed"] is False and results[2]["error"].startswith("[job-timeout]")
    assert results[2]["run"]["attempts"] == 2
    assert [r["passed"] for r in results[:2]] == [True, True]


def test_local_engine_retries_a_dead_child_once_then_reports_it(tmp_path, monkeypatch):
    # A target that is not a scenario nor a drive fails inside the job: an error result, not retried.
    spec = JobSpec(target=str(tmp_path / "nothing.yaml"), out=str(tmp_path / "out"))
    (r,) = engine.run_local([spec])
    assert r["passed"] is False and r["error"].startswith("[") and r["run"]["attempts"] == 1
    # A child that dies (killed by a signal) is tried twice, then failed with its exit status.
    calls = []

    def dying(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, -9, stdout="", stderr="Killed")

    monkeypatch.setattr(engine.subprocess, "run", dying)
    (r,) = engine.run_local([spec])
    assert len(calls) == 2 and r["error"].startswith("[job-died] worker exited with -9")


def _batch(engine_name: str, out: Path) -> dict:
    cmd = [sys.executable, "-m", "vehicle_assist.cli", "replay", str(paths.sim() / "scenarios"), "--check", "--no-video",
           "--engine", engine_name, "--jobs", "2", "--json", "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    summary["_wall"] = time.perf_counter() - t0
    summary["_rc"] = proc.returncode
    return summary


def _comparable(summary: dict) -> list[tuple]:
    return [(t["name"], t["passed"], t["error"], tuple(t["failed_checks"]), t["ref_diffs"],
             tuple((round(a, 1), n) for a, n in t["alerts"]), tuple(tuple(c) for c in t["cited_rules"]))
            for t in summary["targets"]]


@pytest.mark.slow
def test_ray_engine_gives_the_local_summary_on_every_scenario(tmp_path):
    local = _batch("local", tmp_path / "local")
    on_ray = _batch("ray", tmp_path / "ray")
    assert on_ray["engine"] == "ray" and local["engine"] == "local"
    assert _comparable(on_ray) == _comparable(local)
    for k in ("failed", "alert_recall", "alert_precision", "labelled", "false_alerts_per_hour"):
        assert on_ray[k] == local[k], k
    assert local["failed"] == 0 and local["_rc"] == 0, [t for t in local["targets"] if not t["passed"]]
    assert all(t["node"] and t["wall_s"] for t in on_ray["targets"])
    # Each Ray worker loads the models once and reuses them for its later drives.
    assert sum(1 for t in on_ray["targets"] if t["models_loaded"]) < len(on_ray["targets"])
