"""Batch replay engines: where replay jobs run. The job is one function, :func:`run_job`, the same on
every engine; the engines differ only in how jobs are placed, timed out and retried.

- ``local`` (default): one child process per job (``python -m vehicle_assist.replay.engine``), at
  most ``jobs`` at a time. A crash or a hang costs that job's process only.
- ``ray``: one Ray task per job (:mod:`ray`, local instance or a cluster at ``address``), declaring
  the CPUs the safety lane uses; each worker process loads the models once and reuses them for every
  job it runs. Results stream back as they finish.

Both retry a job once when its process dies or it exceeds ``time_limit_s``, then report it as failed
with the error; the other jobs' results are never lost. A job that raises is not retried (the same
input would fail the same way): its result carries the error.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable

ENGINES = ("local", "ray")


@dataclass(frozen=True)
class JobSpec:
    """One replay job: a target (scenario or drive) and how to replay it. Plain data, so it travels
    to a child process as JSON and to a Ray worker as a pickle."""

    target: str
    out: str
    realtime: bool = False
    speed: float = 1.0
    rate: float | None = None
    start: float = 0.0
    end: float | None = None
    check: bool = False
    update_refs: bool = False
    voice: bool = True
    video: bool = True
    mcap: bool = False
    config_file: str | None = None

    @property
    def name(self) -> str:
        return Path(self.target).stem


# --- the job (runs in whatever process the engine placed it in) ---------------------------------

_PARTS: dict[tuple[str | None, bool], Any] = {}
"""Models loaded in this process, by (config file, voice): loaded by the first job, reused after."""


def load_parts(spec: JobSpec) -> tuple[Any, Any, bool]:
    """The config and loaded models for ``spec``; the models come from this process's cache when an
    earlier job loaded them. Returns (config, parts, loaded_now)."""
    from vehicle_assist import config as config_mod
    from vehicle_assist import runtime

    cfg = config_mod.load_app(Path(spec.config_file) if spec.config_file else None)
    if not spec.realtime:
        # Lockstep replays run faster than real time (telemetry-only drives ~85x) while speech renders in
        # wall time, and the feeder does not wait for route advisories: Piper's 0.3-1.5 s per sentence
        # would shift route advice by tens of seconds of drive time. They speak with espeak-ng (~20 ms);
        # realtime replays and live runs use the configured voice (docs/speech.md).
        tts = cfg.speech.tts.model_copy(update={"engine": "pyttsx3"})
        cfg = cfg.model_copy(update={"speech": cfg.speech.model_copy(update={"tts": tts})})
    key = (spec.config_file, spec.voice, cfg.speech.tts.engine)
    loaded_now = key not in _PARTS
    if loaded_now:
        _PARTS[key] = runtime.load_parts(cfg, voice=spec.voice)
    return cfg, _PARTS[key], loaded_now


def run_job(spec: JobSpec, on_item: Callable[[Any], None] | None = None) -> dict[str, Any]:
    """Replay one target and evaluate it (:func:`vehicle_assist.replay.job.replay_target`); the result
    adds where and how long it ran."""
    from vehicle_assist.replay import job
    from vehicle_assist.replay.run import ReplayOptions

    t0 = time.perf_counter()
    t = job.resolve_target(spec.target)
    cfg, parts, loaded_now = load_parts(spec)
    options = ReplayOptions(mode="realtime" if spec.realtime else "lockstep", start_s=spec.start, end_s=spec.end,
                            speed=spec.speed, frame_rate_hz=spec.rate)
    result = job.replay_target(t, cfg, parts, Path(spec.out), options, spec.check and t.scenario is not None,
                               spec.update_refs and t.scenario is not None, spec.video, spec.mcap, on_item=on_item)
    result["run"] = {"wall_s": round(time.perf_counter() - t0, 3), "node": _node(), "pid": os.getpid(),
                     "models_loaded": loaded_now}
    return result


def _node() -> str:
    """The Ray node id when running in a Ray worker, else the host name."""
    if "ray" in sys.modules:
        try:
            import ray

            if ray.is_initialized():
                return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
        except Exception:  # not in a Ray worker after all
            pass
    return socket.gethostname()


def failed(spec: JobSpec, error: str, attempts: int) -> dict[str, Any]:
    """The result of a job that produced none: named, failed, with its error."""
    return {"name": spec.name, "passed": False, "error": error, "checks": [], "alerts": [], "out": spec.out,
            "run": {"attempts": attempts}}


def safe_job(spec: JobSpec) -> dict[str, Any]:
    """:func:`run_job` with an exception turned into a failed result (not retried)."""
    try:
        return run_job(spec)
    except Exception as err:  # noqa: BLE001 - one job's failure is a result, not the batch's crash
        message = getattr(err, "message", None) or str(err)  # a coded error's own message: "[code] message" once
        return failed(spec, f"[{getattr(err, 'code', type(err).__name__)}] {message}", 1)


# --- engines ----------------------------------------------------------------------------------

Job = Callable[[JobSpec], dict[str, Any]]
OnResult = Callable[[dict[str, Any]], None]


class JobLost(Exception):
    """A job's process died or ran past its time limit."""


def run_local(specs: list[JobSpec], jobs: int = 1, time_limit_s: float | None = None,
              on_result: OnResult | None = None) -> list[dict[str, Any]]:
    """Each job in a child process (at most ``jobs`` at once); results in ``specs`` order."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    def attempt(spec: JobSpec) -> dict[str, Any]:
        cmd = [sys.executable, "-m", "vehicle_assist.replay.engine", json.dumps(asdict(spec))]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=time_limit_s)
        except subprocess.TimeoutExpired as err:
            raise JobLost(f"[job-timeout] still running after {time_limit_s:g} s") from err
        lines = proc.stdout.strip().splitlines()
        try:
            return json.loads(lines[-1])
        except (IndexError, json.JSONDecodeError):
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise JobLost(f"[job-died] worker exited with {proc.returncode}: {tail}") from None

    results: dict[int, dict[str, Any]] = {}
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        futures = {pool.submit(_with_retry, attempt, s): i for i, s in enumerate(specs)}
        for fut in as_completed(futures):
            r = fut.result()
            results[futures[fut]] = r
            if on_result:
                on_result(r)
    return [results[i] for i in range(len(specs))]


def _with_retry(attempt: Callable[[JobSpec], dict[str, Any]], spec: JobSpec, tries: int = 2) -> dict[str, Any]:
    error = ""
    for n in range(1, tries + 1):
        try:
            r = attempt(spec)
            r.setdefault("run", {})["attempts"] = n
            return r
        except JobLost as err:
            error = str(err)
    return failed(spec, error, tries)


def run_ray(specs: list[JobSpec], address: str | None = None, cpus_per_job: float = 1.0,
            time_limit_s: float | None = None, on_result: OnResult | None = None, job: Job = safe_job,
            tries: int = 2, num_cpus: int | None = None) -> list[dict[str, Any]]:
    """Each job a Ray task declaring ``cpus_per_job``; a task whose worker dies or that exceeds
    ``time_limit_s`` is cancelled and submitted again, ``tries`` times in all. ``address``: a running
    cluster (``ray://host:10001`` or ``auto``); None starts a local instance (``num_cpus`` CPUs)."""
    import ray
    from ray.exceptions import GetTimeoutError, RayError, TaskCancelledError

    started_here = not ray.is_initialized()
    if started_here:
        env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith("VA_")}}
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False,
                 log_to_driver=False, runtime_env=env, configure_logging=False)
    task = ray.remote(num_cpus=cpus_per_job, max_retries=0)(job)
    results: dict[int, dict[str, Any]] = {}
    pending: dict[Any, tuple[int, int, float]] = {}  # ref -> (index, attempt, submitted at)

    def submit(i: int, n: int) -> None:
        pending[task.remote(specs[i])] = (i, n, time.monotonic())

    def finish(i: int, r: dict[str, Any], n: int) -> None:
        r.setdefault("run", {})["attempts"] = n
        results[i] = r
        if on_result:
            on_result(r)

    def lost(i: int, n: int, error: str) -> None:
        if n < tries:
            submit(i, n + 1)
        else:
            finish(i, failed(specs[i], error, n), n)

    try:
        for i in range(len(specs)):
            submit(i, 1)
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in ready:
                i, n, _t = pending.pop(ref)
                try:
                    finish(i, ray.get(ref, timeout=0), n)
                except (GetTimeoutError, TaskCancelledError, RayError) as err:
                    lost(i, n, f"[job-died] {_first_line(err)}")
            if time_limit_s is not None:
                now = time.monotonic()
                for ref, (i, n, t_sub) in list(pending.items()):
                    if now - t_sub > time_limit_s:
                        pending.pop(ref)
                        ray.cancel(ref, force=True)
                        lost(i, n, f"[job-timeout] still running after {time_limit_s:g} s")
    except KeyboardInterrupt:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return [results[i] for i in range(len(specs))]


def _first_line(err: BaseException) -> str:
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


def run(engine: str, specs: list[JobSpec], jobs: int = 1, address: str | None = None, cpus_per_job: float = 1.0,
        time_limit_s: float | None = None, on_result: OnResult | None = None) -> list[dict[str, Any]]:
    """Run ``specs`` on ``engine``; results in ``specs`` order, each with ``run`` (wall_s, node, attempts)."""
    if engine == "local":
        return run_local(specs, jobs, time_limit_s, on_result)
    if engine == "ray":
        return run_ray(specs, address, cpus_per_job, time_limit_s, on_result, num_cpus=jobs if address is None else None)
    raise ValueError(f"unknown engine {engine!r} (one of {', '.join(ENGINES)})")


def _main(argv: list[str]) -> None:
    """Child-process entry of the local engine: one JobSpec as JSON in, one JSON result line out."""
    spec = JobSpec(**json.loads(argv[1]))
    sys.stdout.write(json.dumps(safe_job(spec), default=str) + "\n")


def with_out(specs: Iterable[JobSpec], base: Path) -> list[JobSpec]:
    """Each spec writing under ``base/<name>``."""
    return [replace(s, out=str(base / s.name)) for s in specs]


if __name__ == "__main__":
    _main(sys.argv)
