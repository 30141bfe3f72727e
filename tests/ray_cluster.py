"""A two-node Ray cluster on loopback, for tests/test_batch.py and benchmarks/batch.py.

Run it inside a network namespace of its own (``unshare -n``), so that 127.0.0.1 is the only
address and Ray can neither bind nor dial the machine's real interfaces:

    unshare -n python tests/ray_cluster.py SCENARIO.json

The scenario (JSON) lists commands to run as drivers against the cluster (``{address}`` is
replaced); a command may carry ``"kill_worker_node_when"``: a shot id pattern, and the second
node is then SIGKILLed (the whole process tree of its ``ray start``: raylet, workers) once a
shot running there has committed at least one journal chunk. Only processes this script
started are ever signalled (never ``ray stop``). Results go to ``SCENARIO.result.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, from /proc (parent pids)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def _kill_tree(pids: list[int], sig=signal.SIGKILL) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except ProcessLookupError:
            pass


class TwoNodes:
    """Head (1 CPU) + a second node (1 CPU) on 127.0.0.1; started and stopped by pid."""

    def __init__(self, port: int = 6390, cpus: int = 1):
        self.port = port
        self.cpus = cpus
        self.address = f"127.0.0.1:{port}"
        self.temp = tempfile.mkdtemp(prefix="vr", dir="/tmp")  # Ray's socket paths must stay short
        self.env = dict(
            os.environ,
            RAY_USAGE_STATS_ENABLED="0",
            # a lost node is noticed in ~1.5 s instead of ~30 s
            RAY_health_check_period_ms="500",
            RAY_health_check_timeout_ms="500",
            RAY_health_check_failure_threshold="3",
        )
        self.head = self.worker = None

    def _start(self, args: list[str], log: str) -> subprocess.Popen:
        out = open(Path(self.temp) / log, "w")
        return subprocess.Popen(
            [
                RAY,
                "start",
                "--node-ip-address",
                "127.0.0.1",
                f"--num-cpus={self.cpus}",
                "--num-gpus=0",
                "--block",
                *args,
            ],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> TwoNodes:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        try:
            self.head = self._start(
                ["--head", f"--port={self.port}", "--include-dashboard=false", f"--temp-dir={self.temp}"], "head.log"
            )
            # the second node retries its connection until the head's GCS answers: start both at once
            self.worker = self._start([f"--address={self.address}"], "worker.log")
            self._wait_nodes(2)
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_nodes(self, n: int, timeout: float = 90) -> None:
        code = (
            "import ray,sys,time\nfor _ in range(600):\n"
            f"  try:\n    ray.init(address={self.address!r}, logging_level='ERROR', log_to_driver=False); break\n"
            "  except Exception: time.sleep(0.2)\n"
            f"t=time.time()\nwhile len([x for x in ray.nodes() if x['Alive']]) < {n}:\n"
            f"  time.sleep(0.2)\n  assert time.time()-t < {timeout}, 'nodes did not come up'\n"
            "import json; print(json.dumps([x['NodeID'] for x in ray.nodes() if x['Alive'] and "
            "'node:__internal_head__' not in x['Resources']]))\n"
        )
        r = subprocess.run(
            [sys.executable, "-c", code],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            check=False,
        )
        if r.returncode != 0:
            raise RuntimeError(f"ray nodes did not come up: {r.stderr[-2000:]}")
        ids = json.loads(r.stdout.strip().splitlines()[-1])
        if n == 2:
            self.worker_node_id = ids[0]

    def kill_worker_node(self) -> None:
        _kill_tree(_tree(self.worker.pid))
        self.worker.wait()

    def __exit__(self, *exc) -> None:
        try:
            self._stop()
        finally:
            shutil.rmtree(self.temp, ignore_errors=True)

    def _stop(self) -> None:
        for proc in (self.worker, self.head):
            if proc is None or proc.poll() is not None:
                continue
            procs = _tree(proc.pid)
            proc.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
            try:
                proc.wait(40)
            except subprocess.TimeoutExpired:
                pass
            _kill_tree(procs)  # whatever of ours outlived the stop
            proc.wait()


def _running_there(root: Path, node_id: str | None) -> str | None:
    """A shot running on the Ray node with ``node_id`` (None: anywhere) that has committed a journal
    chunk."""
    for report in root.glob("*/report.json"):
        try:
            r = json.loads(report.read_text())
            if r.get("status") != "running" or (node_id is not None and r.get("ray_node") != node_id):
                continue
            journal = json.loads((report.parent / f".vmatte-partial-{r['id']}" / "manifest.json").read_text())
        except (OSError, ValueError, KeyError):
            continue
        if journal.get("completed", 0) >= 1:
            return r["id"]
    return None


def run_scenario(scenario: dict) -> dict:
    results: dict = {"runs": []}
    with TwoNodes(scenario.get("port", 6390)) as cluster:
        results["worker_node"] = cluster.worker_node_id
        for run in scenario["runs"]:
            cmd = [c.replace("{address}", cluster.address) for c in run["cmd"]]
            t0 = time.perf_counter()
            proc = subprocess.Popen(cmd, env=cluster.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            killed = None
            if run.get("kill_worker_node"):
                root = Path(run["root"])
                while proc.poll() is None and killed is None:
                    killed = _running_there(root, cluster.worker_node_id)
                    if killed is None:
                        time.sleep(0.02)
                if killed is not None:
                    cluster.kill_worker_node()
            out, err = proc.communicate(timeout=run.get("timeout", 300))
            results["runs"].append(
                {
                    "rc": proc.returncode,
                    "stdout": out,
                    "stderr": err[-4000:],
                    "killed": killed,
                    "seconds": time.perf_counter() - t0,
                }
            )
    return results


if __name__ == "__main__":
    path = Path(sys.argv[1])
    result = run_scenario(json.loads(path.read_text()))
    path.with_suffix(".result.json").write_text(json.dumps(result, indent=1))
