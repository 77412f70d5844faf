#!/usr/bin/env python3
"""Benchmarks pgk8s against the shell-script baseline (scripts/baseline.sh) and, for migrations,
against the physical limit (one hand-written `kubectl exec` piping the same files into one psql),
on the simulated cluster with real PostgreSQL pods running PostgreSQL's durable defaults (fsync,
synchronous_commit and full_page_writes on: PGK8S_SIM_DURABLE=1) and an injected API latency per
kubectl/helm call.

Prints Markdown tables of wall time, kubectl/helm calls, pgk8s's overhead over the limit (and
where it goes) and baseline/pgk8s ratios, and writes them to docs/benchmarks.md.
Usage: scripts/bench.sh [--quick]   (env: BENCH_LATENCY_MS=100, BENCH_RUNS=3, BENCH_DB_MB=1024 for
the backup/restore memory measurement; --quick: 200 MB). On a machine shared with other work,
more runs (BENCH_RUNS=15) keep the medians steady; the page says how many it used.
"""

import collections
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "pgk8s")
SIM = os.path.join(ROOT, "tests", "sim", "pgk8s_sim.py")
BASELINE = os.path.join(ROOT, "scripts", "baseline.sh")
QUICK = "--quick" in sys.argv
LATENCY_MS = int(os.environ.get("BENCH_LATENCY_MS", "100"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
DB_MB = int(os.environ.get("BENCH_DB_MB", "200" if QUICK else "1024"))


# A kubectl in front of the simulator's that keeps a copy of its stdin in $PGK8S_BENCH_CAPTURE.
# Like kubectl exec, it exits when the command in the pod does, whether or not stdin is closed.
CAPTURING_KUBECTL = """#!/usr/bin/env python3
import os, subprocess, sys, threading
child = subprocess.Popen([SIMULATED_KUBECTL] + sys.argv[1:], stdin=subprocess.PIPE)
def forward():
    with open(os.environ["PGK8S_BENCH_CAPTURE"], "wb") as copy:
        while chunk := os.read(0, 65536):
            copy.write(chunk)
            copy.flush()
            try:
                child.stdin.write(chunk)
                child.stdin.flush()
            except OSError:
                return
        child.stdin.close()
threading.Thread(target=forward, daemon=True).start()
os._exit(child.wait())
"""


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
                        # Every pod runs PostgreSQL's durable defaults, as on a real cluster.
                        PGK8S_SIM_DURABLE="1",
                        PGK8S_SIM_CACHE=os.path.join(tempfile.gettempdir(), "pgk8s-sim-cache"))
        self.log = os.path.join(self.dir, "state", "calls.jsonl")
        self.capture_bin = os.path.join(self.dir, "capture-bin")
        os.mkdir(self.capture_bin)
        with open(os.path.join(self.capture_bin, "kubectl"), "w") as handle:
            handle.write(CAPTURING_KUBECTL.replace("SIMULATED_KUBECTL", repr(os.path.join(bin_dir, "kubectl"))))
        os.chmod(os.path.join(self.capture_bin, "kubectl"), 0o755)
        self.databases = 0

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

    def fresh_database(self):
        """Creates an empty database owned by the application user; returns its name."""
        self.databases += 1
        name = f"bench_{self.databases}"
        self.admin_sql(f"create database {name} owner learnflow;")
        return name

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


def server_facts(cluster):
    """The pod's fsync, synchronous_commit and full_page_writes (all three must be on), its
    PostgreSQL version and the file system its data directory is on (what an fsync costs)."""
    names = ("fsync", "synchronous_commit", "full_page_writes")
    values = cluster.admin_sql("".join(f"show {name};\n" for name in names + ("server_version",))).split()
    settings = dict(zip(names, values))
    if any(value != "on" for value in settings.values()):
        sys.exit(f"the simulator's pod does not run PostgreSQL's durable defaults: {settings}")
    filesystem = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", cluster.dir], capture_output=True, text=True).stdout.strip()
    return {"settings": settings, "version": values[len(names)], "filesystem": filesystem or "unknown",
            "fdatasync_us": fdatasync_us(cluster.dir)}


def fdatasync_us(directory):
    """Median time of an 8 kB write plus fdatasync in `directory`: about what a commit waits for."""
    path = os.path.join(directory, "fdatasync-probe")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    samples = []
    try:
        for _ in range(200):
            started = time.perf_counter()
            os.pwrite(descriptor, b"\0" * 8192, 0)
            os.fdatasync(descriptor)
            samples.append((time.perf_counter() - started) * 1e6)
    finally:
        os.close(descriptor)
        os.remove(path)
    return statistics.median(samples)


def up_files(directory):
    """The up scripts pgk8s applies from `directory`, in version order."""
    return sorted(os.path.join(directory, name) for name in os.listdir(directory) if name.endswith(".up.sql"))


def limit_exec(database):
    """The physical limit's command: one hand-written `kubectl exec` of one psql reading stdin."""
    script = ('PGPASSWORD="$(cat /opt/bitnami/postgresql/secrets/password)" '
              f"exec psql -X -q -v ON_ERROR_STOP=1 -U learnflow -d {database} -f -")
    return ["kubectl", "exec", "-i", "postgresql-0", "-c", "postgresql", "-n", "learnflow", "--", "sh", "-c", script]


def limit_input(directory):
    """The physical limit's stdin: every up script, each in its own transaction."""
    parts = []
    for path in up_files(directory):
        with open(path) as handle:
            parts.append(f"BEGIN;\n{handle.read()}\nCOMMIT;\n")
    return "".join(parts).encode()


# pgk8s's per-migration additions, as it writes them to psql (src/migration_engine.rs). Only the
# breakdown of the overhead uses them; it stops if they no longer match what pgk8s sends.
# The reset is replaced by the `;` that ends its message, so a replay without it sends as many
# messages as pgk8s does.
SESSION_RESET = re.compile(r" \\; RESET ROLE \\; RESET SESSION AUTHORIZATION \\; RESET ALL \\; "
                           r"DISCARD TEMP \\; DISCARD PLANS \\; DISCARD SEQUENCES;")
HISTORY_ROW = re.compile(r"INSERT INTO pgk8s\.schema_history \(.*?\) RETURNING execution_ms \\; ")


def captured_session(cluster, database, directory):
    """Runs pgk8s migrate once (untimed) with a kubectl that keeps a copy of the exec's stdin.
    Returns that exec's argv, what pgk8s wrote to psql, and the stream without its session resets
    and without its history rows as well: replayed in one write each, they split pgk8s's
    overhead over the limit into its parts."""
    capture = os.path.join(cluster.dir, "captured.sql")
    before = len(cluster.calls())
    cluster.run([BINARY, "migrate", "-d", database, "-m", directory], latency=False,
                extra_env={"PATH": f"{cluster.capture_bin}:{cluster.env['PATH']}", "PGK8S_BENCH_CAPTURE": capture})
    argv = ["kubectl"] + next(c["argv"] for c in cluster.calls()[before:] if c.get("phase") == "start")
    with open(capture, "rb") as handle:
        stream = handle.read().decode()
    count = len(up_files(directory))
    if len(SESSION_RESET.findall(stream)) != count or len(HISTORY_ROW.findall(stream)) != count:
        sys.exit("pgk8s's session resets or history rows no longer look as scripts/bench.py expects; "
                 "update SESSION_RESET and HISTORY_ROW")
    without_resets = SESSION_RESET.sub(";", stream)
    without_rows = HISTORY_ROW.sub("", without_resets)
    return argv, {"replay": stream.encode(), "without_resets": without_resets.encode(),
                  "without_rows": without_rows.encode()}


def on_database(argv, old, new):
    """argv of a captured exec, pointed at another database."""
    script = argv[-1].replace(f" -d {old}", f" -d {new}")
    if script == argv[-1]:
        sys.exit(f"cannot find -d {old} in {argv[-1]}")
    return argv[:-1] + [script]


# One timed run: wall time, kubectl/helm calls, and (for a run of one `kubectl exec`) the time
# until that exec had started and logged the call.
Run = collections.namedtuple("Run", "seconds calls until_exec")
# The single-exec runs of one migrate round, for the breakdown of pgk8s's overhead.
Round = collections.namedtuple("Round", "pgk8s limit replay without_resets without_rows")


def timed_run(cluster, argv, extra_env=None, stdin=None):
    before = len(cluster.calls())
    started = time.time()
    cluster.run(argv, extra_env=extra_env, stdin=stdin)
    ended = time.time()
    starts = [c for c in cluster.calls()[before:] if c.get("phase") == "start"]
    until_exec = starts[0]["time"] - started if len(starts) == 1 and starts[0]["argv"][0] == "exec" else None
    return Run(ended - started, len(starts), until_exec)


def public_tables(cluster, database):
    return int(cluster.admin_sql("select count(*) from pg_tables where schemaname = 'public';", database=database).strip())


def migrate_runs(cluster, directory):
    """RUNS rounds of pgk8s, the physical limit, the replays of pgk8s's stream and the baseline,
    interleaved so that a busy moment of the shared machine hits them alike; each on a fresh
    database."""
    captured_database = cluster.fresh_database()
    captured_argv, replays = captured_session(cluster, captured_database, directory)
    results = {"pgk8s": [], "limit": [], **{name: [] for name in replays}, "baseline": []}
    for index in range(RUNS):
        ours_database = cluster.fresh_database()
        results["pgk8s"].append(timed_run(cluster, [BINARY, "migrate", "-d", ours_database, "-m", directory]))
        limit_database = cluster.fresh_database()
        results["limit"].append(timed_run(cluster, limit_exec(limit_database), stdin=limit_input(directory)))
        if index == 0 and public_tables(cluster, ours_database) != public_tables(cluster, limit_database):
            sys.exit(f"the physical limit did not create the tables pgk8s did from {directory}")
        for name, stream in replays.items():
            argv = on_database(captured_argv, captured_database, cluster.fresh_database())
            results[name].append(timed_run(cluster, argv, stdin=stream))
        results["baseline"].append(timed_run(cluster, [BASELINE, "migrate", directory], {"DB": cluster.fresh_database()}))
    return results


def summary(runs):
    """Median time, the spread (min, max) and the call count of some runs."""
    times = [run.seconds for run in runs]
    return {"time": statistics.median(times), "min": min(times), "max": max(times),
            "calls": max(run.calls for run in runs)}


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
    load_at_start = os.getloadavg()[0]
    try:
        cluster.run([BINARY, "deploy", "--skip-migrations", "--timeout", "120s"], latency=False)
        server = server_facts(cluster)
        progress("PostgreSQL durable defaults: " + ", ".join(f"{name} = {value}" for name, value in server["settings"].items()))
        migrations = []
        for label, count in (("migrate, N=7 (LearnFlow)", 7), ("migrate, N=50", 50), ("migrate, N=200", 200)):
            directory = os.path.join(ROOT, "migrations") if count == 7 else generated_dir(cluster, count)
            progress(label)
            migrations.append((label, count, migrate_runs(cluster, directory)))

        progress("verify, seed, deploy")
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
        progress(f"backup and restore of a {DB_MB} MB database")
        memory = backup_restore_memory(cluster)
    finally:
        cluster.close()
    report(server, migrations, rows, overhead, help_ms, memory, (load_at_start, os.getloadavg()[0]))


def progress(step):
    print(f"bench: {step} (load average {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)


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

- **Durable settings.** Every commit waits for its WAL flush. On this machine's disk a flush
  costs about a tenth of a millisecond (see the machine line), so a migration is CPU-bound here
  (catalog work of each `CREATE TABLE`) and pgk8s and the limit pay the same flush per
  migration. On a network volume with millisecond flushes both grow by N flushes; pgk8s adds
  three more on a first run (history schema, table and comment are committed one by one) and
  one on later runs (the `COMMENT` is rewritten every run).
- **One call, like the limit.** A migrate run is one `kubectl exec` whatever the number of files,
  the same as the hand-written limit, so the injected API latency is paid once by both. The
  baseline pays it N+1 times, so the gap grows with N.
- **What the overhead over the limit buys.** The limit takes no lock (two concurrent runs both
  apply everything), keeps no history (a second run fails on the first existing table, a changed
  file goes unnoticed), does not re-read the history to confirm, and does not reset the session
  between files (a `SET` in one file leaks into the next). pgk8s does all of these in the same
  session, and the breakdown table shows what each costs. The fixed part (process start, lock,
  history table, reads, waiting for answers) is around ten milliseconds in all; what grows with N
  is the history row written inside each migration's transaction and the session reset after it
  (six statements in one message). Together they cost a fraction of a millisecond per migration,
  which is a tenth or more of a migration as cheap as the generated one-`CREATE TABLE` files at
  N=50 and 200, and a smaller share of bigger migrations such as LearnFlow's.
- **Messages, not only calls.** Each migration's `BEGIN` travels in one message with its first
  statement, and its history row, `COMMIT` and session reset in one more, so a migration costs
  the server round trips of its own statements plus one, where the limit's costs two
  (`BEGIN;` and `COMMIT;` sent alone).
- **What the simulator does not show.** It injects latency per kubectl call, not per message on
  an exec stream. pgk8s waits for psql's answer nine times in a run (backend pid, lock, history
  table, history check, history read, the pipelined migrations, re-check, re-read, unlock); the
  limit never waits. Here each wait costs well under a millisecond (*conversation and process*);
  on a real cluster each is one round trip through the API server and the kubelet.
- verify is one `helm status`, one `kubectl get` of every kind it needs, one read of the
  credentials Secret (for an interrupted password rotation) and one read-only psql session; the
  baseline's `kubectl wait` plus separate psql calls check less (no volumes, no migrations).
- deploy is dominated by `helm upgrade --wait`; pgk8s's own share (concurrent pre-flight checks,
  one `kubectl apply` for namespace and Secret, one exec for migrations) stays around a second
  with 100 ms per call.
- Backup and restore stream through a 256 KiB buffer: peak memory does not grow with the size of
  the database. Their times include writing and flushing the data durably.
"""


def report(server, migrations, rows, overhead, help_ms, memory, load):
    lines = [
        "| scenario | pgk8s time | pgk8s calls | physical limit time | limit calls | pgk8s over the limit "
        "| baseline time | baseline calls | speed-up (baseline/pgk8s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    spreads = []
    parts = [
        "| N | pgk8s over the limit | start, files, checksums | conversation and process | session resets "
        "| history rows | lock, history table, reads (once) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, count, results in migrations:
        ours, limit, base = (summary(results[name]) for name in ("pgk8s", "limit", "baseline"))
        rounds = [Round(*runs) for runs in zip(*(results[name] for name in Round._fields))]
        over = paired(rounds, lambda run: run.pgk8s.seconds / run.limit.seconds - 1)
        lines.append(
            f"| {label} | {ours['time']:.3f} s | {ours['calls']} | {limit['time']:.3f} s | {limit['calls']} "
            f"| {100 * over:+.0f} % ({milliseconds(paired(rounds, OVERHEAD_PARTS[0]))}) "
            f"| {base['time']:.2f} s | {base['calls']} | {base['time'] / ours['time']:.1f}× |")
        spreads.append(f"N={count}: pgk8s {ours['min']:.3f}–{ours['max']:.3f} s, "
                       f"limit {limit['min']:.3f}–{limit['max']:.3f} s "
                       f"(best runs: pgk8s {100 * (ours['min'] / limit['min'] - 1):+.0f} % over the limit), "
                       f"baseline {base['min']:.2f}–{base['max']:.2f} s")
        parts.append(f"| {count} | " + " | ".join(milliseconds(paired(rounds, part)) for part in OVERHEAD_PARTS) + " |")
    for label, (ours_s, ours_calls), (base_s, base_calls) in rows:
        lines.append(f"| {label} | {ours_s:.2f} s | {ours_calls} | — | — | — | {base_s:.2f} s | {base_calls} "
                     f"| {base_s / ours_s:.1f}× |")
    total, outside_helm = overhead
    lines += [
        "",
        f"Spread over the {RUNS} runs (min–max): " + "; ".join(spreads) + ".",
        "",
        f"- deploy overhead beyond `helm upgrade`: {outside_helm:.2f} s (of {total:.2f} s total, no migrations)",
        f"- `pgk8s --help` cold start: {help_ms:.1f} ms (median of 30)",
        f"- backup of a {memory['database_mib']:.0f} MiB database ({memory['dump_mib']:.0f} MiB dump): "
        f"peak RSS {memory['backup_rss']:.1f} MiB, {memory['backup_s']:.1f} s",
        f"- restore of that dump: peak RSS {memory['restore_rss']:.1f} MiB, {memory['restore_s']:.1f} s",
        "",
        "### Where pgk8s's time over the limit goes",
        "",
        "Each round also replays, through one hand-written exec in one write, exactly what pgk8s wrote to",
        "psql (captured once per N): as is, without its session resets, and without its history rows too.",
        "*start, files, checksums* is pgk8s's extra time until its exec had started; *conversation and",
        "process* is pgk8s minus the replay of its own stream, less that start (waiting for each answer",
        "before sending the next statement, reading results, reporting); *session resets*, *history rows*",
        "and *lock, history table, reads* (advisory lock and unlock, `CREATE … IF NOT EXISTS` and",
        "`COMMENT` of the history table, backend pid, history read before and confirming re-read after)",
        "are the SQL pgk8s adds to the limit's. Each is the median over the rounds of a difference",
        "between runs of the same round, so they add up to the first column only roughly, and a part",
        "of a few ms is within the noise.",
        "",
    ] + parts
    table = "\n".join(lines)
    reproduce = "scripts/bench.sh" + (" --quick" if QUICK else "")
    if RUNS != 3:
        reproduce = f"BENCH_RUNS={RUNS} {reproduce}"
    header = (
        "# Benchmarks\n\n"
        "pgk8s against the shell-script way (`scripts/baseline.sh`: one `kubectl get` for the pod, then one\n"
        "`kubectl exec … psql -f` per SQL file; `kubectl wait` plus separate psql calls to verify) and, for\n"
        "migrations, against the physical limit: one hand-written `kubectl exec -i postgresql-0 -c postgresql\n"
        "-- sh -c '… exec psql -X -q -v ON_ERROR_STOP=1 -U learnflow -d DB -f -'` fed the same up scripts,\n"
        "each wrapped in its own `BEGIN; … COMMIT;`. Simulated cluster with "
        f"{LATENCY_MS} ms injected latency per\n"
        "kubectl/helm call and real PostgreSQL pods; every migrate run starts on a fresh database, and\n"
        "pgk8s, the limit and the baseline take turns within each round.\n"
        f"Median of {RUNS} runs; *pgk8s over the limit* is the median over the rounds of pgk8s's time\n"
        f"over the limit's in the same round. Reproduce with `{reproduce}`.\n\n"
        "**PostgreSQL durable defaults**: the pods run with "
        + ", ".join(f"`{name} = {value}`" for name, value in server["settings"].items())
        + " (the simulator's\n`PGK8S_SIM_DURABLE=1`; the benchmark reads the settings back from the pod and refuses to run\n"
        "otherwise), so every commit waits for its WAL flush as on a real cluster. Earlier versions of\n"
        "this page were measured with all three off, which no real cluster runs.\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other work (load average "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end), {platform.system()} {platform.release()}, "
        f"PostgreSQL {server['version']}, data directories on {server['filesystem']} "
        f"(an 8 kB write + fdatasync: {server['fdatasync_us']:.0f} µs median).\n\n"
    )
    print(header + table)
    with open(os.path.join(ROOT, "docs", "benchmarks.md"), "w") as handle:
        handle.write(header + table + "\n" + READING)


# pgk8s's time over the limit, then its parts (the columns of the breakdown table).
OVERHEAD_PARTS = (
    lambda run: run.pgk8s.seconds - run.limit.seconds,
    lambda run: run.pgk8s.until_exec - run.limit.until_exec,
    lambda run: run.pgk8s.seconds - run.replay.seconds - (run.pgk8s.until_exec - run.limit.until_exec),
    lambda run: run.replay.seconds - run.without_resets.seconds,
    lambda run: run.without_resets.seconds - run.without_rows.seconds,
    lambda run: run.without_rows.seconds - run.limit.seconds,
)


def paired(rounds, difference):
    """Median over the rounds of a difference between runs of the same round, which a busy moment
    of the machine shifts less than a difference of medians."""
    return statistics.median(difference(run) for run in rounds)


def milliseconds(seconds):
    return f"{seconds * 1000:+.0f} ms"


if __name__ == "__main__":
    main()
