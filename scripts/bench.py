#!/usr/bin/env python3
"""Benchmarks pgk8s against the shell-script baseline (scripts/baseline.sh) on the simulated
cluster with real PostgreSQL pods and an injected API latency per kubectl/helm call.

Prints a Markdown table of wall time, kubectl/helm calls and baseline/pgk8s ratios, and writes it
to docs/benchmarks.md. Usage: scripts/bench.sh [--quick]   (env: BENCH_LATENCY_MS=100,
BENCH_RUNS=3, BENCH_DB_MB=1024 for the backup/restore memory measurement; --quick: 200 MB).
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "pgk8s")
SIM = os.path.join(ROOT, "tests", "sim", "pgk8s_sim.py")
BASELINE = os.path.join(ROOT, "scripts", "baseline.sh")
QUICK = "--quick" in sys.argv
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "100"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DB_MB = int(os.environ.get("BENCH_DB_MB", "200" if QUICK else "1024"))


class Cluster:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="pgk8s-bench-")
        os.chmod(self.dir, 0o755)
        bin_dir = os.path.join(self.dir, "bin")
        os.mkdir(bin_dir)
        for name in ("kubectl", "helm", "pgk8s-sim"):
            os.symlink(SIM, os.path.join(bin_dir, name))
        self.env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", NO_COLOR="1",
                        PGK8S_SIM_DIR=os.path.join(self.dir, "state"),
                        PGK8S_SIM_CACHE=os.path.join(tempfile.gettempdir(), "pgk8s-sim-cache"))
        self.log = os.path.join(self.dir, "state", "calls.jsonl")

    def run(self, argv, latency=True, extra_env=None, stdin=None, check=True):
        env = dict(self.env, **(extra_env or {}))
        if latency:
            env["PGK8S_FAKE_LATENCY_MS"] = str(LATENCY_MS)
        result = subprocess.run(argv, env=env, input=stdin, capture_output=True, text=stdin is None or isinstance(stdin, str))
        if check and result.returncode != 0:
            sys.exit(f"failed: {' '.join(argv)}\n{result.stdout}\n{result.stderr}")
        return result

    def calls(self):
        if not os.path.exists(self.log):
            return []
        with open(self.log) as handle:
            return [json.loads(line) for line in handle]

    def admin_sql(self, sql, namespace="learnflow", database="postgres"):
        script = ('PGPASSWORD="$(cat /opt/bitnami/postgresql/secrets/postgres-password)" '
                  f"exec psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d {database} -f -")
        return self.run(["kubectl", "exec", "-i", "postgresql-0", "-c", "postgresql", "-n", namespace,
                         "--", "sh", "-c", script], latency=False, stdin=sql).stdout

    def close(self):
        subprocess.run(["pgk8s-sim", "teardown"], env=self.env, capture_output=True)
        shutil.rmtree(self.dir, ignore_errors=True)


def measure(cluster, argv, extra_env=None):
    """Wall time (s) and number of kubectl/helm calls of one run."""
    before = len(cluster.calls())
    started = time.perf_counter()
    cluster.run(argv, extra_env=extra_env)
    elapsed = time.perf_counter() - started
    calls = [c for c in cluster.calls()[before:] if c.get("phase") == "start"]
    return elapsed, len(calls)


def median_runs(prepare, argv_for):
    """Runs RUNS times (prepare(i) sets up run i); returns median time and the call count."""
    times, counts = [], []
    for index in range(RUNS):
        cluster, argv, extra = prepare(index), *argv_for(index)
        elapsed, calls = measure(cluster, argv, extra)
        times.append(elapsed)
        counts.append(calls)
    return statistics.median(times), max(counts)


def generated_dir(cluster, count):
    path = os.path.join(cluster.dir, f"migrations-{count}")
    os.makedirs(path, exist_ok=True)
    for version in range(1, count + 1):
        with open(os.path.join(path, f"{version:03d}_t{version}.up.sql"), "w") as handle:
            handle.write(f"create table t{version} (id bigint primary key, note text);\n")
    return path


def main():
    if not os.path.exists(BINARY):
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    cluster = Cluster()
    rows = []
    try:
        cluster.run([BINARY, "deploy", "--skip-migrations", "--timeout", "120s"], latency=False)
        counter = iter(range(10_000))

        def fresh_database(_):
            name = f"bench_{next(counter)}"
            cluster.admin_sql(f"create database {name} owner learnflow;")
            fresh_database.name = name
            return cluster

        for label, count in (("migrate, N=7 (LearnFlow)", 7), ("migrate, N=50", 50), ("migrate, N=200", 200)):
            directory = os.path.join(ROOT, "migrations") if count == 7 else generated_dir(cluster, count)
            ours = median_runs(fresh_database, lambda _: ([BINARY, "migrate", "-d", fresh_database.name, "-m", directory], None))
            base = median_runs(fresh_database, lambda _: ([BASELINE, "migrate", directory], {"DB": fresh_database.name}))
            rows.append((label, ours, base))

        cluster.run([BINARY, "migrate"], latency=False)
        ours = median_runs(lambda _: cluster, lambda _: ([BINARY, "verify", "--check-schema"], None))
        base = median_runs(lambda _: cluster, lambda _: ([BASELINE, "verify"], None))
        rows.append(("verify (healthy)", ours, base))

        ours = median_runs(lambda _: cluster, lambda _: ([BINARY, "seed"], None))
        base = median_runs(lambda _: cluster, lambda _: ([BASELINE, "seed"], None))
        rows.append(("seed (4 files)", ours, base))

        namespaces = iter(range(10_000))
        ours_deploy = median_runs(lambda _: cluster, lambda _: ([BINARY, "deploy", "-n", f"bench-p{next(namespaces)}", "--timeout", "120s"], None))
        base_deploy = median_runs(lambda _: cluster, lambda _: ([BASELINE, "deploy"], {"NS": f"bench-b{next(namespaces)}"}))
        rows.append(("deploy + migrate (fresh namespace)", ours_deploy, base_deploy))
        overhead = deploy_overhead(cluster)

        help_ms = cold_start_ms()
        memory = backup_restore_memory(cluster)
    finally:
        cluster.close()
    report(rows, overhead, help_ms, memory)


def deploy_overhead(cluster):
    """pgk8s deploy time outside `helm upgrade` (whose duration is the fake's pod start)."""
    namespace = "bench-overhead"
    before = len(cluster.calls())
    started = time.perf_counter()
    cluster.run([BINARY, "deploy", "-n", namespace, "--skip-migrations", "--timeout", "120s"])
    total = time.perf_counter() - started
    records = cluster.calls()[before:]
    helm_start = next(c["time"] for c in records if c["tool"] == "helm" and c["argv"][0] == "upgrade" and c.get("phase") == "start")
    helm_end = next(c["time"] for c in records if c["tool"] == "helm" and c["argv"][0] == "upgrade" and c.get("phase") == "exit")
    return total, total - (helm_end - helm_start)


def cold_start_ms():
    samples = []
    for _ in range(30):
        started = time.perf_counter()
        subprocess.run([BINARY, "--help"], capture_output=True, check=True)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def peak_rss_mib(cluster, argv):
    """Runs argv (no latency) and samples its own peak RSS (VmHWM) until it exits."""
    process = subprocess.Popen(argv, env=cluster.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            with open(f"/proc/{process.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.02)
    if process.returncode != 0:
        sys.exit(f"failed: {' '.join(argv)}\n{process.stderr.read().decode()}")
    return peak / 1024


def backup_restore_memory(cluster):
    rows = DB_MB * 2**20 // 1100
    cluster.admin_sql("create table if not exists big (id bigint, payload text);", database="learnflow")
    cluster.admin_sql(
        "insert into big select g, string_agg(md5((g * 37 + i)::text), '') "
        f"from generate_series(1, {rows}) g, generate_series(1, 34) i group by g;",
        database="learnflow")
    size = int(cluster.admin_sql("select pg_database_size('learnflow');", database="learnflow").strip())
    dump = os.path.join(cluster.dir, "big.dump")
    started = time.perf_counter()
    backup_rss = peak_rss_mib(cluster, [BINARY, "backup", "-f", dump])
    backup_seconds = time.perf_counter() - started
    started = time.perf_counter()
    restore_rss = peak_rss_mib(cluster, [BINARY, "restore", "-f", dump, "--yes"])
    restore_seconds = time.perf_counter() - started
    return {"database_mib": size / 2**20, "dump_mib": os.path.getsize(dump) / 2**20,
            "backup_rss": backup_rss, "backup_s": backup_seconds,
            "restore_rss": restore_rss, "restore_s": restore_seconds}


READING = """
## Reading the numbers

- A migrate run is one `kubectl exec` whatever the number of files: the lock, the history, every
  migration (pipelined) and the confirming re-read share one psql session. The baseline pays a
  full round trip per file, so the gap grows with N; what remains of pgk8s's time at N=200 is
  the SQL itself (about 2 ms per `CREATE TABLE … PRIMARY KEY` in the pod).
- verify is one `helm status`, one `kubectl get` of every kind it needs, and one read-only psql
  session; the baseline's `kubectl wait` plus separate psql calls check less (no volumes, no
  migrations).
- deploy is dominated by `helm upgrade --wait`; pgk8s's own share (concurrent pre-flight checks,
  one `kubectl apply` for namespace and Secret, one exec for migrations) is under a second even
  with 100 ms per call.
- Backup and restore stream through a 256 KiB buffer: peak memory does not grow with the size of
  the database.
"""


def report(rows, overhead, help_ms, memory):
    lines = [
        "| scenario | pgk8s time | pgk8s calls | baseline time | baseline calls | speed-up (baseline/pgk8s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, (ours_s, ours_calls), (base_s, base_calls) in rows:
        lines.append(f"| {label} | {ours_s:.2f} s | {ours_calls} | {base_s:.2f} s | {base_calls} | {base_s / ours_s:.1f}× |")
    total, outside_helm = overhead
    lines += [
        "",
        f"- deploy overhead beyond `helm upgrade`: {outside_helm:.2f} s (of {total:.2f} s total, no migrations)",
        f"- `pgk8s --help` cold start: {help_ms:.1f} ms (median of 30)",
        f"- backup of a {memory['database_mib']:.0f} MiB database ({memory['dump_mib']:.0f} MiB dump): "
        f"peak RSS {memory['backup_rss']:.1f} MiB, {memory['backup_s']:.1f} s",
        f"- restore of that dump: peak RSS {memory['restore_rss']:.1f} MiB, {memory['restore_s']:.1f} s",
    ]
    table = "\n".join(lines)
    print(table)
    header = (
        "# Benchmarks\n\n"
        "pgk8s against the shell-script way (`scripts/baseline.sh`: one `kubectl get` for the pod, then one\n"
        "`kubectl exec … psql -f` per SQL file; `kubectl wait` plus separate psql calls to verify) on the\n"
        f"simulated cluster with {LATENCY_MS} ms injected latency per kubectl/helm call and real PostgreSQL\n"
        f"pods. Median of {RUNS} runs. Reproduce with `scripts/bench.sh`"
        + (" --quick" if QUICK else "") + ".\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}.\n\n"
    )
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "w") as handle:
        handle.write(header + table + "\n" + READING)


if __name__ == "__main__":
    main()
