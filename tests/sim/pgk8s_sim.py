#!/usr/bin/env python3
"""A simulated Kubernetes cluster for pgk8s tests: fake `kubectl` and `helm`, busybox style.

Invoked through symlinks named `kubectl`, `helm` and `pgk8s-sim` (the control command the tests
use). State lives in $PGK8S_SIM_DIR: Kubernetes objects in state.json, one data directory per
PersistentVolumeClaim, and calls.jsonl, one line per call (argv, stdin byte count, env names).

The pod is real: a PostgreSQL server started from the claim's data directory on a free port of
127.0.0.1. On first start the data directory is initialised from a cached template and the
passwords come from the Secret named by auth.existingSecret, as the Bitnami image does; later
starts keep whatever the volume holds. `kubectl exec` runs the command with the pod's mounted
Secret files mirrored into a temporary directory, so psql authenticates for real.

Majors. A pod runs the PostgreSQL major of its image tag (`17.6.0-debian-12-r4` -> 17, `15.8.0`
-> 15; no tag: the chart's 17.6.0). Server binaries of major M: $PGK8S_SIM_PG_BINDIR_<M>, else
scripts/get-postgres.sh's install (<tools>/postgres/M/bin), else the machine's own when it is of
major M. A major the machine lacks falls back to the machine's own (`pgk8s-sim major NS POD`
shows what runs). The initdb template is cached per major (template-<M>). In `kubectl exec` the
PATH is the pod major's bin directory, then the newest full client installation (PyPI's 18: psql,
pg_dump, pg_restore, pg_upgrade), then the machine's. A server that does not start (a volume of
another major: `FATAL:  database files are incompatible with server`) crash-loops: the pod is
CrashLoopBackOff (restartCount going up with the kubelet's back-off, lastState Error/1) and
`kubectl logs [--previous]` prints the Bitnami entrypoint's lines and the server's own.

The cluster also has: two StorageClasses, `standard` (default, no allowVolumeExpansion) and
`expandable`; `kubectl patch` of a claim (merge patch) refused or grown as kube-apiserver v1.34
does it, status.capacity following; `kubectl delete statefulset --cascade=orphan` (pods and
claims stay, servers untouched; without it the pods go, claims stay); helm creating a StatefulSet
that is gone and adopting running pods with the same template (only a changed pod template
restarts servers; a live StatefulSet's volumeClaimTemplates are immutable);
primary.persistence.existingClaim (the pod mounts that claim, Pending while it does not exist);
`kubectl apply` of a PersistentVolumeClaim (Bound at its request, the default class);
`kubectl annotate`/`label` (with kubectl's --overwrite rule) and `patch --subresource=status`.

The CloudNativePG operator (chart cloudnative-pg, CRD clusters.postgresql.cnpg.io) lives in
sim_cnpg.py beside this file: see its docstring. It catches up at the start of every kubectl and
helm call (sim_cnpg.operate).

Environment:
  PGK8S_SIM_DIR             state directory (required)
  PGK8S_SIM_CACHE           where the initdb templates are cached (default: $TMPDIR/pgk8s-sim-cache)
  PGK8S_SIM_DURABLE         1: new pods start from a separate template (<major>-durable) with
                            PostgreSQL's durable defaults (fsync, synchronous_commit and
                            full_page_writes on) instead of the fast test settings (all three off);
                            the benchmarks use it
  PGK8S_SIM_PG_BINDIR       the machine's own PostgreSQL server binaries (default: `pg_config --bindir`)
  PGK8S_SIM_PG_BINDIR_<M>   server binaries of major M (default: <tools>/postgres/M/bin)
  PGK8S_TOOLS_DIR           <tools> (default: ~/.cache/pgk8s-tools), where get-postgres.sh installs
  PGK8S_FAKE_RESIZE_PENDING_MS  a grown claim shows FileSystemResizePending this long before
                            status.capacity follows (default 0: at once)
  PGK8S_FAKE_POD_TERMINATION_MS  pods of an install that helm rolled back (uninstalled) stay
                            Terminating, with their last status, this long (default 5000)
  PGK8S_FAKE_HELM_VERSION   3 or 4 (default 4): which helm's flags are accepted
  PGK8S_FAKE_LATENCY_MS     sleep this long at the start of every call (API round trip)
  PGK8S_FAKE_FAULTS         comma list: api-down, forbidden, kubectl-old, no-default-storageclass,
                            pod-never-ready, image-pull-backoff, pvc-pending, unschedulable,
                            oomkilled, crashloop, apply-fails (apply and replace refused),
                            write-fails-after-effect (apply/replace store the object, then fail),
  PGK8S_FAKE_WRITES_OK      the first N apply/replace calls succeed; the write faults apply after
                            echo-input (mutating kubectl and helm calls fail echoing argv and stdin),
                            storageclass-forbidden, namespace-forbidden,
                            cnpg-operator-down (the CNPG operator's pod not ready: its webhook
                            refuses Clusters, nothing is reconciled), cnpg-operator-stuck (it
                            admits Clusters but reconciles nothing)
  PGK8S_FAKE_CNPG_STEP_MS   the CNPG operator's pace: a step is due this long after the last
                            (default 200); one step running PostgreSQL per call
  PGK8S_FAKE_HELM_WAIT_MS   helm upgrade waits this long with the release pending-install/-upgrade
                            (SIGINT/SIGTERM cancel it and, with --atomic, roll it back)
  PGK8S_FAKE_EXEC_DROP_AFTER  kill `kubectl exec` after forwarding this many stdin bytes
  PGK8S_FAKE_API_DOWN_AFTER_CALLS  the API becomes unreachable after this many calls
  PGK8S_FAKE_PORT_FORWARD_EXIT_AFTER_MS  end `kubectl port-forward` after this long
  PGK8S_SIM_CANARY          a secret value; calls record env var names whose value contains it

Control command (pgk8s-sim): teardown | restart NS POD | not-ready NS POD SECONDS | db-down NS POD
  | port NS POD | major NS POD (the major the pod's server runs) | majors (each major a pod can
  run here: major, version, bin directory) | age-release NS RELEASE SECONDS
"""

import base64
import contextlib
import copy
import datetime
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import sim_cnpg  # noqa: E402  (the CloudNativePG operator: tests/sim/sim_cnpg.py)

SECRETS_DIR = "/opt/bitnami/postgresql/secrets"
CHART_APP_VERSION = "17.6.0"
DEFAULT_TAG = "17.6.0-debian-12-r4"
DEFAULT_IMAGE = f"docker.io/bitnami/postgresql:{DEFAULT_TAG}"
SIM_ADMIN = "simadmin"
SIM_ADMIN_PASSWORD = "sim-admin-password"
# What kubectl 1.34 prints when the API server is down: client-go's retries as log lines first.
API_DOWN = "\n".join(
    ['E1202 10:00:00.123456    4242 memcache.go:265] "Unhandled Error" err="couldn\'t get current '
     'server API group list: Get \\"https://127.0.0.1:6443/api?timeout=32s\\": dial tcp '
     '127.0.0.1:6443: connect: connection refused"'] * 2
    + ["The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"])
HELM_API_DOWN = ('Error: Kubernetes cluster unreachable: Get "https://127.0.0.1:6443/version": '
                 "dial tcp 127.0.0.1:6443: connect: connection refused")

KINDS = {
    "pods": "Pod", "pod": "Pod", "po": "Pod",
    "persistentvolumeclaims": "PersistentVolumeClaim", "persistentvolumeclaim": "PersistentVolumeClaim",
    "pvc": "PersistentVolumeClaim",
    "services": "Service", "service": "Service", "svc": "Service",
    "statefulsets": "StatefulSet", "statefulset": "StatefulSet", "sts": "StatefulSet",
    "events": "Event", "event": "Event", "ev": "Event",
    "secrets": "Secret", "secret": "Secret",
    "namespaces": "Namespace", "namespace": "Namespace", "ns": "Namespace",
    "storageclasses": "StorageClass", "storageclass": "StorageClass", "sc": "StorageClass",
}
CLUSTER_SCOPED = {"Namespace", "StorageClass"}
PLURAL = {"Pod": "pods", "PersistentVolumeClaim": "persistentvolumeclaims", "Service": "services",
          "StatefulSet": "statefulsets", "Event": "events", "Secret": "secrets",
          "Namespace": "namespaces", "StorageClass": "storageclasses"}
API_VERSION = {"StatefulSet": "apps/v1", "StorageClass": "storage.k8s.io/v1"}
# How kubectl names a kind in its messages: `statefulset.apps/x`, `persistentvolumeclaim/x`.
RESOURCE_REF = {"StatefulSet": "statefulset.apps", "StorageClass": "storageclass.storage.k8s.io"}
sim_cnpg.register(sys.modules[__name__])


# ---------------------------------------------------------------------------------------------
# state, locking, call log


def sim_dir():
    path = os.environ.get("PGK8S_SIM_DIR")
    if not path:
        die("PGK8S_SIM_DIR is not set: the simulated cluster needs a state directory", 1)
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o755)
    return path


def faults():
    return {f.strip() for f in os.environ.get("PGK8S_FAKE_FAULTS", "").split(",") if f.strip()}


@contextlib.contextmanager
def locked_state():
    """Yields the state dict under an exclusive lock and saves it afterwards."""
    directory = sim_dir()
    with open(os.path.join(directory, "state.lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = os.path.join(directory, "state.json")
        state = load_state(path)
        yield state
        temporary = path + ".tmp"
        with open(temporary, "w") as out:
            json.dump(state, out, indent=1, sort_keys=True)
        os.replace(temporary, path)


def read_state():
    directory = sim_dir()
    with open(os.path.join(directory, "state.lock"), "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        return load_state(os.path.join(directory, "state.json"))


def load_state(path):
    if os.path.exists(path):
        with open(path) as handle:
            state = json.load(handle)
        # Pods deleted with a grace period are gone once it is over.
        for pod_key, gone_at in list(state.get("terminating", {}).items()):
            if gone_at <= time.time():
                state["terminating"].pop(pod_key)
                state["objects"].pop(pod_key, None)
                state["runtime"].pop(pod_key, None)
        return state
    return {"objects": {}, "releases": {}, "runtime": {}, "event_counter": 0}


def log_call(tool, argv, stdin_bytes=None, **extra):
    canary = os.environ.get("PGK8S_SIM_CANARY")
    record = {
        "tool": tool,
        "argv": argv,
        "stdin_bytes": stdin_bytes,
        "env": sorted(os.environ),
        "time": time.time(),
        "pid": os.getpid(),
    }
    if canary:
        record["canary_in_env"] = sorted(
            name for name, value in os.environ.items()
            if canary in value and not name.startswith("PGK8S_SIM_"))
    record.update(extra)
    line = json.dumps(record) + "\n"
    with open(os.path.join(sim_dir(), "calls.jsonl"), "a") as log:
        fcntl.flock(log, fcntl.LOCK_EX)
        log.write(line)


def calls_made():
    """Calls logged so far in this cluster (each logs one "start" record)."""
    with open(os.path.join(sim_dir(), "calls.jsonl")) as log:
        return sum(1 for line in log if '"phase": "start"' in line)


def die(message, code=1):
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.exit(code)


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def key(kind, namespace, name):
    return f"{kind}/{namespace or ''}/{name}"


def put(state, obj):
    meta = obj["metadata"]
    state["resource_version"] = state.get("resource_version", 1000) + 1
    meta["resourceVersion"] = str(state["resource_version"])
    meta.setdefault("creationTimestamp", now())
    meta.setdefault("uid", f"sim-{abs(hash((obj['kind'], meta.get('namespace'), meta['name']))):x}")
    obj.setdefault("apiVersion", API_VERSION.get(obj["kind"], "v1"))
    state["objects"][key(obj["kind"], meta.get("namespace"), meta["name"])] = obj
    if obj["kind"] == "Pod" and "deletionTimestamp" not in meta:
        state.get("terminating", {}).pop(key("Pod", meta.get("namespace"), meta["name"]), None)


def get(state, kind, namespace, name):
    return state["objects"].get(key(kind, None if kind in CLUSTER_SCOPED else namespace, name))


def remove(state, kind, namespace, name):
    return state["objects"].pop(key(kind, None if kind in CLUSTER_SCOPED else namespace, name), None)


def objects_of(state, kind, namespace):
    found = []
    for obj in state["objects"].values():
        if obj["kind"] != kind:
            continue
        if kind not in CLUSTER_SCOPED and obj["metadata"].get("namespace") != namespace:
            continue
        found.append(obj)
    return sorted(found, key=lambda o: o["metadata"]["name"])


def add_event(state, namespace, involved_kind, involved_name, reason, message, event_type="Warning"):
    state["event_counter"] = state.get("event_counter", 0) + 1
    put(state, {
        "kind": "Event",
        "metadata": {"name": f"{involved_name}.{state['event_counter']:08x}", "namespace": namespace},
        "involvedObject": {"kind": involved_kind, "name": involved_name, "namespace": namespace},
        "reason": reason, "message": message, "type": event_type, "count": 1,
        "firstTimestamp": now(), "lastTimestamp": now(),
    })


def ensure_cluster_defaults(state):
    """Two StorageClasses, as on the real-control-plane tier: `standard`, the default, which
    cannot grow a claim (kind's local-path), and `expandable`, which can."""
    if get(state, "StorageClass", None, "standard") is None:
        put(state, {"kind": "StorageClass", "metadata": {"name": "standard", "annotations": {
            "storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate"})
    if get(state, "StorageClass", None, "expandable") is None:
        put(state, {"kind": "StorageClass", "metadata": {"name": "expandable"},
                    "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
                    "volumeBindingMode": "Immediate", "allowVolumeExpansion": True})
    if get(state, "Namespace", None, "default") is None:
        put(state, {"kind": "Namespace", "metadata": {"name": "default"}, "status": {"phase": "Active"}})


# ---------------------------------------------------------------------------------------------
# real PostgreSQL behind the pods


def machine_bindir():
    """The machine's own PostgreSQL: PGK8S_SIM_PG_BINDIR, else `pg_config --bindir`, else the
    newest /usr/lib/postgresql/*/bin."""
    configured = os.environ.get("PGK8S_SIM_PG_BINDIR")
    if configured:
        return configured
    try:
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True,
                                check=True).stdout.strip()
        if os.path.exists(os.path.join(bindir, "initdb")):
            return bindir
    except (OSError, subprocess.CalledProcessError):
        pass
    installed = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                       key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0)
    return os.path.dirname(installed[-1]) if installed else "/usr/lib/postgresql/15/bin"


_VERSIONS = {}


def bindir_version(bindir):
    """`postgres --version` of a bin directory as (major, "17.10"), or None if it does not run."""
    if bindir not in _VERSIONS:
        try:
            text = subprocess.run([os.path.join(bindir, "postgres"), "--version"], capture_output=True,
                                  text=True, check=True, timeout=30).stdout
            found = re.search(r"\(PostgreSQL\) (\d+)(\.\d+)?", text)
            _VERSIONS[bindir] = (int(found.group(1)), found.group(1) + (found.group(2) or "")) if found else None
        except (OSError, subprocess.SubprocessError):
            _VERSIONS[bindir] = None
    return _VERSIONS[bindir]


def tools_dir():
    return os.environ.get("PGK8S_TOOLS_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "pgk8s-tools")


def server_usable(bindir):
    return bindir and all(os.access(os.path.join(bindir, tool), os.X_OK)
                          for tool in ("postgres", "initdb", "pg_ctl"))


def server_bindir(major):
    """Server binaries of PostgreSQL `major`, or None when the machine has none: the directory
    PGK8S_SIM_PG_BINDIR_<major> names, else scripts/get-postgres.sh's install
    (<tools>/postgres/<major>/bin), else the machine's own when it is of that major. Real paths:
    the servers run as the postgres user, which may not pass through a link under /root."""
    candidates = [os.environ.get(f"PGK8S_SIM_PG_BINDIR_{major}"),
                  os.path.join(tools_dir(), "postgres", str(major), "bin")]
    for candidate in candidates:
        if candidate and server_usable(os.path.realpath(candidate)):
            return os.path.realpath(candidate)
    machine = os.path.realpath(machine_bindir())
    version = bindir_version(machine)
    return machine if version and version[0] == major else None


def available_majors():
    """{major: bin directory} of every PostgreSQL the simulator can run."""
    majors = set()
    for name in os.environ:
        if name.startswith("PGK8S_SIM_PG_BINDIR_") and name.rsplit("_", 1)[1].isdigit():
            majors.add(int(name.rsplit("_", 1)[1]))
    for path in glob.glob(os.path.join(tools_dir(), "postgres", "*")):
        if os.path.basename(path).isdigit():
            majors.add(int(os.path.basename(path)))
    machine = bindir_version(os.path.realpath(machine_bindir()))
    if machine:
        majors.add(machine[0])
    found = {major: server_bindir(major) for major in sorted(majors)}
    return {major: bindir for major, bindir in found.items() if bindir}


def image_major(image):
    """The PostgreSQL major of an image: the leading number of its tag (`17.6.0-debian-12-r4`,
    `15`, `15.8.0`); no tag means the chart's default."""
    reference = image.split("@", 1)[0]
    last = reference.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else DEFAULT_TAG
    found = re.match(r"v?(\d+)", tag)
    return int(found.group(1)) if found else int(DEFAULT_TAG.split(".")[0])


def pod_server(image):
    """(major, bin directory) a pod of this image runs on: its image's major when the machine
    has it, else the machine's own (a fallback `pgk8s-sim major` shows)."""
    wanted = image_major(image)
    bindir = server_bindir(wanted)
    if bindir:
        return wanted, bindir
    machine = os.path.realpath(machine_bindir())
    version = bindir_version(machine)
    return (version[0] if version else wanted), machine


def client_dirs(server_dir):
    """Where a pod's client tools come from, in PATH order: the server's own bin directory, then
    the newest full installation (psql and pg_dump: PyPI's 18), then the machine's. A newer
    psql/pg_dump works against an older server; the npm server packages have no clients."""
    dirs = [server_dir]
    full = [bindir for _, bindir in sorted(available_majors().items(), reverse=True)
            if os.access(os.path.join(bindir, "psql"), os.X_OK)
            and os.access(os.path.join(bindir, "pg_dump"), os.X_OK)]
    dirs += full[:1] + [os.path.realpath(machine_bindir())]
    return [d for index, d in enumerate(dirs) if d and d not in dirs[:index]]


def find_tool(dirs, name):
    for directory in dirs:
        if os.access(os.path.join(directory, name), os.X_OK):
            return os.path.join(directory, name)
    return name


def as_postgres(argv):
    """Runs server commands as the postgres user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--"] + argv
    return argv


def chown_postgres(path):
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "postgres:postgres", path], check=True)


# What the test template adds to postgresql.conf: fast, not durable (a killed test loses nothing
# it needs).
TEMPLATE_SETTINGS = ("\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                     "shared_buffers = 16MB\nmax_connections = 40\n")
# The tests' speed-up; PGK8S_SIM_DURABLE=1 (the benchmarks) keeps PostgreSQL's durable defaults.
FAST_SETTINGS = "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"


def template_variant(major):
    """(cache key, postgresql.conf additions) of the initdb template for a major. One template
    per key: the durable variant gets its own key and cache."""
    if os.environ.get("PGK8S_SIM_DURABLE") == "1":
        return f"{major}-durable", TEMPLATE_SETTINGS
    return str(major), TEMPLATE_SETTINGS + FAST_SETTINGS


def template_dir(major, bindir):
    cache = os.environ.get("PGK8S_SIM_CACHE") or os.path.join(
        os.environ.get("TMPDIR", "/tmp"), "pgk8s-sim-cache")
    os.makedirs(cache, exist_ok=True)
    os.chmod(cache, 0o755)
    variant, settings = template_variant(major)
    template = os.path.join(cache, f"template-{variant}")
    with open(template + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(template, "PG_VERSION")):
            return template
        building = template + ".building"
        shutil.rmtree(building, ignore_errors=True)
        os.makedirs(building)
        pwfile = os.path.join(cache, f"pwfile-{variant}")
        with open(pwfile, "w") as handle:
            handle.write(SIM_ADMIN_PASSWORD + "\n")
        chown_postgres(building)
        chown_postgres(pwfile)
        subprocess.run(as_postgres([
            os.path.join(bindir, "initdb"), "-D", building, "-U", SIM_ADMIN,
            f"--pwfile={pwfile}", "--auth=scram-sha-256", "-E", "UTF8", "--locale=C",
            "--no-instructions"]), check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(building, "postgresql.conf"), "a") as conf:
            conf.write(settings)
        os.rename(building, template)
        return template


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def volume_dir(namespace, claim):
    return os.path.join(sim_dir(), "volumes", namespace, claim)


class ServerFailed(Exception):
    """The server exited at start; `lines` is what it wrote."""

    def __init__(self, lines):
        super().__init__("\n".join(lines))
        self.lines = lines


def start_server(volume, bindir, options=""):
    """Starts the volume's server with these binaries (and extra server options); raises
    ServerFailed with the server's own output when it does not come up (a data directory of
    another major, say)."""
    port = free_port()
    log = os.path.join(volume, "postgresql.log")
    offset = os.path.getsize(log) if os.path.exists(log) else 0
    started = subprocess.run(as_postgres([
        os.path.join(bindir, "pg_ctl"), "-D", os.path.join(volume, "data"), "-l", log,
        "-o", f"-p {port} {options}".rstrip(), "-w", "-t", "60", "start"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if started.returncode != 0:
        lines = []
        if os.path.exists(log):
            with open(log, errors="replace") as handle:
                handle.seek(offset)
                lines = handle.read().splitlines()
        raise ServerFailed(lines or [f"pg_ctl exited with {started.returncode}"])
    with open(os.path.join(volume, "server.json"), "w") as handle:
        json.dump({"bindir": bindir}, handle)
    return port


def stop_server(volume, mode="fast"):
    """Stops a pod's server. `fast` is what a pod's SIGTERM does: committed data survives; the
    test teardown uses `immediate`. Uses the binaries that started it."""
    data = os.path.join(volume, "data")
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        bindir = machine_bindir()
        with contextlib.suppress(OSError, ValueError):
            with open(os.path.join(volume, "server.json")) as handle:
                bindir = json.load(handle)["bindir"]
        subprocess.run(as_postgres([os.path.join(bindir, "pg_ctl"), "-D", data, "-m",
                                    mode, "-w", "stop"]),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def admin_psql(port, sql, psql, database="postgres"):
    env = dict(os.environ, PGPASSWORD=SIM_ADMIN_PASSWORD, PGHOST="127.0.0.1", PGPORT=str(port))
    return subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", SIM_ADMIN,
         "-d", database, "-At", "-c", sql],
        env=env, capture_output=True, text=True, check=True).stdout


def sql_literal(value):
    return "'" + value.replace("'", "''") + "'"


def secret_value(secret, name):
    encoded = secret.get("data", {}).get(name)
    return base64.b64decode(encoded).decode() if encoded else None


def initialise_volume(volume, port, values, secret, psql):
    """What the Bitnami entrypoint does on an empty volume: roles, passwords, database."""
    auth = values.get("auth", {})
    database = auth.get("database", "postgres")
    username = auth.get("username")
    statements = [f"CREATE ROLE postgres SUPERUSER LOGIN PASSWORD {sql_literal(secret_value(secret, 'postgres-password'))}"]
    if username and username != "postgres":
        statements.append(f'CREATE ROLE "{username}" LOGIN PASSWORD {sql_literal(secret_value(secret, "password"))}')
    if values.get("architecture") == "replication":
        replication_user = auth.get("replicationUsername", "repl_user")
        statements.append(f'CREATE ROLE "{replication_user}" REPLICATION LOGIN PASSWORD '
                          f"{sql_literal(secret_value(secret, 'replication-password') or '')}")
    admin_psql(port, "; ".join(statements), psql)
    owner = username if username and username != "postgres" else "postgres"
    if database != "postgres":
        admin_psql(port, f'CREATE DATABASE "{database}" OWNER "{owner}"', psql)
    open(os.path.join(volume, ".initialized"), "w").close()


# ---------------------------------------------------------------------------------------------
# the chart: objects a release renders to


def fullname(release):
    name = release if "postgresql" in release else f"{release}-postgresql"
    return name[:63].rstrip("-")


def deep_merge(base, override):
    merged = copy.deepcopy(base)
    for name, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = deep_merge(merged[name], value)
        else:
            merged[name] = copy.deepcopy(value)
    return merged


def labels(release, component=None):
    result = {"app.kubernetes.io/instance": release, "app.kubernetes.io/managed-by": "Helm",
              "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/version": CHART_APP_VERSION,
              "helm.sh/chart": "postgresql-17.1.0"}
    if component:
        result["app.kubernetes.io/component"] = component
    return result


def selector(release, component):
    return {"app.kubernetes.io/instance": release, "app.kubernetes.io/name": "postgresql",
            "app.kubernetes.io/component": component}


def image_of(values):
    image = values.get("image", {})
    registry = image.get("registry", "docker.io")
    repository = image.get("repository", "bitnami/postgresql")
    tag = image.get("tag") or DEFAULT_TAG
    return f"{registry}/{repository}:{tag}"


def workloads(release, values):
    """(component, statefulset name, replicas, persistence values) for each StatefulSet."""
    name = fullname(release)
    primary = values.get("primary", {})
    if values.get("architecture") == "replication":
        read = values.get("readReplicas", {})
        return [("primary", f"{name}-primary", 1, primary.get("persistence", {}), primary),
                ("read", f"{name}-read", int(read.get("replicaCount", 1)), read.get("persistence", {}), read)]
    return [("primary", name, 1, primary.get("persistence", {}), primary)]


def existing_claim(component, persistence):
    """The claim the chart mounts instead of a volumeClaimTemplate (primary.persistence.existingClaim;
    the read replicas' template has no such value)."""
    return persistence.get("existingClaim") if component == "primary" else None


def claim_templates(component, persistence):
    """The StatefulSet's volumeClaimTemplates as the chart renders them: none with existingClaim."""
    if existing_claim(component, persistence):
        return []
    spec = {"accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": persistence.get("size", "8Gi")}}}
    if persistence.get("storageClass"):
        spec["storageClassName"] = persistence["storageClass"]
    return [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
             "spec": spec}]


def template_hash(template):
    """What the StatefulSet controller labels its pods with (controller-revision-hash): pods whose
    template is unchanged keep running when a StatefulSet adopts them."""
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def pod_claim(pod):
    """The claim mounted as the pod's `data` volume."""
    for volume in pod["spec"].get("volumes", []):
        if volume.get("name") in ("data", "pgdata") and "persistentVolumeClaim" in volume:
            return volume["persistentVolumeClaim"]["claimName"]
    return None


def claim_in_use(state, namespace, claim):
    return any(pod_claim(pod) == claim for pod in objects_of(state, "Pod", namespace))


def render_release(state, release, namespace, values):
    """Creates or replaces the StatefulSets, Services, Pods and PVCs of a release. A pod whose
    template changed is marked to roll (its server restarts in start_pods); a pod running with
    the same template is adopted as it is."""
    auth = values.get("auth", {})
    secret_name = auth.get("existingSecret") or fullname(release)
    for component, sts_name, replicas, persistence, workload in workloads(release, values):
        env = [
            {"name": "BITNAMI_DEBUG", "value": "false"},
            {"name": "POSTGRESQL_PORT_NUMBER", "value": "5432"},
            {"name": "POSTGRESQL_VOLUME_DIR", "value": "/bitnami/postgresql"},
            {"name": "PGDATA", "value": "/bitnami/postgresql/data"},
            {"name": "POSTGRES_USER", "value": auth.get("username", "postgres")},
            {"name": "POSTGRES_PASSWORD_FILE", "value": f"{SECRETS_DIR}/password"},
            {"name": "POSTGRES_POSTGRES_PASSWORD_FILE", "value": f"{SECRETS_DIR}/postgres-password"},
            {"name": "POSTGRES_DATABASE", "value": auth.get("database", "postgres")},
        ]
        container = {
            "name": "postgresql", "image": image_of(values), "env": env,
            "ports": [{"name": "tcp-postgresql", "containerPort": 5432}],
            "resources": workload.get("resources", {}),
            "volumeMounts": [
                {"name": "empty-dir", "mountPath": "/tmp", "subPath": "tmp-dir"},
                {"name": "postgresql-password", "mountPath": SECRETS_DIR + "/"},
                {"name": "dshm", "mountPath": "/dev/shm"},
                {"name": "data", "mountPath": "/bitnami/postgresql"},
            ],
        }
        pod_spec = {"containers": [container], "volumes": [
            {"name": "empty-dir", "emptyDir": {}},
            {"name": "postgresql-password", "secret": {"secretName": secret_name}},
            {"name": "dshm", "emptyDir": {"medium": "Memory"}}]}
        mounted = existing_claim(component, persistence)
        if mounted:
            pod_spec["volumes"].append({"name": "data", "persistentVolumeClaim": {"claimName": mounted}})
        template = {"metadata": {"labels": labels(release, component)}, "spec": pod_spec}
        revision = f"{sts_name}-{template_hash(template)}"
        sts_spec = {"replicas": replicas, "serviceName": f"{sts_name}-hl",
                    "selector": {"matchLabels": selector(release, component)}, "template": template}
        if not mounted:
            sts_spec["volumeClaimTemplates"] = claim_templates(component, persistence)
        live = get(state, "StatefulSet", namespace, sts_name)
        sts = {"kind": "StatefulSet", "metadata": {
            "name": sts_name, "namespace": namespace, "labels": labels(release, component)},
            "spec": sts_spec,
            "status": {"replicas": replicas, "readyReplicas": 0, "updateRevision": revision}}
        if live:
            sts["metadata"].update(creationTimestamp=live["metadata"].get("creationTimestamp"),
                                   uid=live["metadata"].get("uid"))
        put(state, sts)
        for service_name, headless in ((sts_name, False), (f"{sts_name}-hl", True)):
            spec = {"type": "ClusterIP", "ports": [{"name": "tcp-postgresql", "port": 5432,
                                                   "targetPort": "tcp-postgresql"}],
                    "selector": selector(release, component)}
            if headless:
                spec["clusterIP"] = "None"
            put(state, {"kind": "Service", "metadata": {
                "name": service_name, "namespace": namespace, "labels": labels(release, component)},
                "spec": spec})
        for ordinal in range(replicas):
            pod_name = f"{sts_name}-{ordinal}"
            claim = mounted or f"data-{pod_name}"
            if not mounted and get(state, "PersistentVolumeClaim", namespace, claim) is None:
                claim_spec = copy.deepcopy(sts_spec["volumeClaimTemplates"][0]["spec"])
                claim_spec.setdefault("storageClassName", default_storage_class(state))
                put(state, {"kind": "PersistentVolumeClaim", "metadata": {
                    "name": claim, "namespace": namespace, "labels": selector(release, component)},
                    "spec": claim_spec, "status": {"phase": "Pending"}})
            pod_labels = dict(labels(release, component), **{
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": pod_name})
            pod = {"kind": "Pod", "metadata": {
                "name": pod_name, "namespace": namespace, "labels": pod_labels,
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": sts_name,
                                     "controller": True, "blockOwnerDeletion": True}]},
                "spec": dict(pod_spec, hostname=pod_name, subdomain=f"{sts_name}-hl", volumes=[
                    volume for volume in pod_spec["volumes"] if volume["name"] != "data"] + [
                    {"name": "data", "persistentVolumeClaim": {"claimName": claim}}]),
                "status": {"phase": "Pending", "conditions": [], "containerStatuses": []}}
            running = get(state, "Pod", namespace, pod_name)
            if running and running["metadata"].get("labels", {}).get("controller-revision-hash") == revision:
                # Adopted: the same pod, its server untouched.
                pod["metadata"].update(creationTimestamp=running["metadata"].get("creationTimestamp"),
                                       uid=running["metadata"].get("uid"))
                pod["status"] = running["status"]
            elif running:
                state["runtime"].setdefault(key("Pod", namespace, pod_name), {})["roll"] = True
            put(state, pod)
    return secret_name


def release_pods(state, release, namespace):
    return [pod for pod in objects_of(state, "Pod", namespace)
            if pod["metadata"]["labels"].get("app.kubernetes.io/instance") == release
            and pod["metadata"]["labels"].get("app.kubernetes.io/managed-by") != "cloudnative-pg"]


def set_pod_status(pod, phase, ready, waiting=None, last_terminated=None, restarts=0,
                   scheduled=True, unschedulable_message=None):
    conditions = [{"type": "PodScheduled", "status": "True" if scheduled else "False"}]
    if not scheduled:
        conditions[0].update(reason="Unschedulable", message=unschedulable_message)
    else:
        conditions += [{"type": "Initialized", "status": "True"},
                       {"type": "ContainersReady", "status": "True" if ready else "False"},
                       {"type": "Ready", "status": "True" if ready else "False"}]
    status = {"phase": phase, "conditions": conditions, "containerStatuses": []}
    if scheduled:
        state = {"running": {"startedAt": now()}} if waiting is None else {"waiting": waiting}
        container = {"name": "postgresql", "ready": ready, "restartCount": restarts,
                     "image": pod["spec"]["containers"][0]["image"], "state": state}
        if last_terminated:
            container["lastState"] = {"terminated": last_terminated}
        status["containerStatuses"] = [container]
    pod["status"] = status


def default_storage_class(state):
    for storage_class in objects_of(state, "StorageClass", None):
        if storage_class["metadata"].get("annotations", {}).get(
                "storageclass.kubernetes.io/is-default-class") == "true":
            return storage_class["metadata"]["name"]
    return "standard"


BACKOFF_STEPS = (10, 20, 40, 80, 160, 300)


def crash_restarts(since):
    """Restarts the kubelet has made by now of a container that fails at once, with its back-off
    (10s doubling to 5m): the first failure counts one."""
    elapsed, restarts = time.time() - since, 1
    for step in BACKOFF_STEPS:
        if elapsed < step:
            return restarts
        elapsed -= step
        restarts += 1
    return restarts + int(elapsed // BACKOFF_STEPS[-1])


def backoff_text(restarts):
    seconds = BACKOFF_STEPS[min(restarts, len(BACKOFF_STEPS)) - 1]
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def crash_status(pod, runtime):
    """CrashLoopBackOff for a pod whose server exited at start (its output in runtime["crash_log"])."""
    restarts = crash_restarts(runtime["crash_since"])
    name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
    set_pod_status(pod, "Running", False, restarts=restarts, waiting={
        "reason": "CrashLoopBackOff",
        "message": f"back-off {backoff_text(restarts)} restarting failed container=postgresql "
                   f"pod={name}_{namespace}({pod['metadata'].get('uid', '')})"},
        last_terminated={"reason": "Error", "exitCode": 1, "startedAt": runtime["crash_at"],
                         "finishedAt": runtime["crash_at"]})


def bitnami_prelude():
    """The Bitnami entrypoint's lines before it execs the server on a volume with data."""
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:11]
    return [f"postgresql {stamp} INFO  ==> {line}" for line in (
        "** Starting PostgreSQL setup **", "Validating settings in POSTGRESQL_* env vars..",
        "Loading custom pre-init scripts...", "Initializing PostgreSQL database...",
        "Deploying PostgreSQL with persisted data...", "** PostgreSQL setup finished! **",
        "** Starting PostgreSQL **")]


def start_pods(state, release, namespace, values, secret_name, restart):
    """Brings the release's pods up, or into the state a fault dictates. Returns True if ready.
    A pod's server restarts when `restart` is set or its template changed (render_release marks
    it); a pod whose server already runs with the same template is left alone."""
    active = faults()
    all_ready = True
    for pod in release_pods(state, release, namespace):
        name = pod["metadata"]["name"]
        claim_name = pod_claim(pod)
        claim = get(state, "PersistentVolumeClaim", namespace, claim_name)
        runtime = state["runtime"].setdefault(key("Pod", namespace, name), {})
        secret = get(state, "Secret", namespace, secret_name)
        if claim is None:
            # kube-scheduler v1.34's words, "not found" twice included.
            message = f'0/1 nodes are available: persistentvolumeclaim "{claim_name}" not found. not found'

            set_pod_status(pod, "Pending", False, scheduled=False, unschedulable_message=message)
            add_event(state, namespace, "Pod", name, "FailedScheduling", message)
            all_ready = False
            continue
        if "pvc-pending" in active:
            claim["status"] = {"phase": "Pending"}
            set_pod_status(pod, "Pending", False, scheduled=False, unschedulable_message=(
                "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."))
            add_event(state, namespace, "PersistentVolumeClaim", claim_name, "ProvisioningFailed",
                      f'storageclass.storage.k8s.io "{claim["spec"]["storageClassName"]}" not found')
            all_ready = False
            continue
        bind_claim(state, claim)
        if "unschedulable" in active:
            set_pod_status(pod, "Pending", False, scheduled=False,
                           unschedulable_message="0/1 nodes are available: 1 Insufficient memory. "
                           "preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.")
            add_event(state, namespace, "Pod", name, "FailedScheduling", "0/1 nodes are available: 1 Insufficient memory.")
            all_ready = False
            continue
        if "image-pull-backoff" in active:
            image = pod["spec"]["containers"][0]["image"]
            set_pod_status(pod, "Pending", False, waiting={
                "reason": "ImagePullBackOff", "message": f'Back-off pulling image "{image}"'})
            add_event(state, namespace, "Pod", name, "Failed",
                      f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and unpack image "{image}": not found')
            all_ready = False
            continue
        if secret is None:
            set_pod_status(pod, "Pending", False, waiting={
                "reason": "CreateContainerConfigError", "message": f'secret "{secret_name}" not found'})
            add_event(state, namespace, "Pod", name, "Failed", f'Error: secret "{secret_name}" not found')
            all_ready = False
            continue
        if "oomkilled" in active or "crashloop" in active:
            reason = "OOMKilled" if "oomkilled" in active else "Error"
            set_pod_status(pod, "Running", False, restarts=4, waiting={
                "reason": "CrashLoopBackOff",
                "message": f"back-off 1m20s restarting failed container=postgresql pod={name}"},
                last_terminated={"reason": reason, "exitCode": 137 if reason == "OOMKilled" else 1,
                                 "finishedAt": now()})
            add_event(state, namespace, "Pod", name, "BackOff", "Back-off restarting failed container postgresql in pod " + name)
            all_ready = False
            continue
        volume = volume_dir(namespace, claim_name)
        rolled = runtime.pop("roll", False)
        if restart or rolled or not runtime.get("port"):
            if runtime.get("volume"):
                stop_server(runtime["volume"])
            stop_server(volume)
            runtime.pop("port", None)
            image = pod["spec"]["containers"][0]["image"]
            major, bindir = pod_server(image)
            runtime.update(volume=volume, image_major=image_major(image), major=major, bindir=bindir,
                           client_dirs=client_dirs(bindir))
            if not os.path.exists(os.path.join(volume, "data", "PG_VERSION")):
                os.makedirs(volume, exist_ok=True)
                shutil.rmtree(os.path.join(volume, "data"), ignore_errors=True)
                subprocess.run(["cp", "-a", template_dir(major, bindir), os.path.join(volume, "data")],
                               check=True)
                chown_postgres(volume)
            prelude = bitnami_prelude()
            try:
                runtime["port"] = start_server(volume, bindir)
            except ServerFailed as failure:
                # The container's process exits: the kubelet restarts it with back-off, and
                # `kubectl logs` (also --previous) shows what it printed.
                runtime["crash_log"] = prelude + failure.lines
                runtime["crash_since"] = time.time()
                runtime["crash_at"] = now()
                crash_status(pod, runtime)
                add_event(state, namespace, "Pod", name, "BackOff",
                          f"Back-off restarting failed container postgresql in pod {name}_{namespace}"
                          f"({pod['metadata'].get('uid', '')})")
                all_ready = False
                continue
            for stale in ("crash_log", "crash_since", "crash_at", "server_down"):
                runtime.pop(stale, None)
            if not os.path.exists(os.path.join(volume, ".initialized")):
                initialise_volume(volume, runtime["port"], values, secret,
                                  find_tool(runtime["client_dirs"], "psql"))
        ready = "pod-never-ready" not in active
        set_pod_status(pod, "Running", ready)
        if not ready:
            add_event(state, namespace, "Pod", name, "Unhealthy",
                      "Readiness probe failed: 127.0.0.1:5432 - no response")
            all_ready = False
    for sts in objects_of(state, "StatefulSet", namespace):
        if sts["metadata"]["labels"].get("app.kubernetes.io/instance") == release:
            ready_count = sum(1 for pod in release_pods(state, release, namespace)
                              if pod["metadata"]["name"].startswith(sts["metadata"]["name"] + "-")
                              and pod_ready(state, pod))
            sts["status"] = dict(sts.get("status", {}), replicas=sts["spec"]["replicas"],
                                 readyReplicas=ready_count)
    return all_ready


def bind_claim(state, claim):
    """A claim in use is Bound; its capacity is what was provisioned (or grown to)."""
    settle_resize(state, claim)
    status = claim.setdefault("status", {})
    if status.get("phase") != "Bound":
        status.update(phase="Bound", accessModes=claim["spec"].get("accessModes", ["ReadWriteOnce"]),
                      capacity=dict(claim["spec"]["resources"]["requests"]))
    status.setdefault("capacity", dict(claim["spec"]["resources"]["requests"]))


def pod_ready(state, pod):
    runtime = state["runtime"].get(key("Pod", pod["metadata"]["namespace"], pod["metadata"]["name"]), {})
    if runtime.get("not_ready_until", 0) > time.time():
        return False
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))


def delete_release_objects(state, release, namespace, linger=False):
    """Deletes a release's pods (servers stopped), StatefulSets and Services. With `linger`, the
    pods stay visible, Terminating with their last status (and logs), for
    PGK8S_FAKE_POD_TERMINATION_MS, as after helm's uninstall on a real cluster."""
    for pod in release_pods(state, release, namespace):
        pod_key = key("Pod", namespace, pod["metadata"]["name"])
        runtime = state["runtime"].get(pod_key, {})
        if runtime.get("volume"):
            stop_server(runtime["volume"])
        if linger:
            runtime.pop("port", None)
            grace = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=30)
            pod["metadata"].update(deletionTimestamp=grace.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   deletionGracePeriodSeconds=30)
            linger_ms = int(os.environ.get("PGK8S_FAKE_POD_TERMINATION_MS", "5000") or 0)
            state.setdefault("terminating", {})[pod_key] = time.time() + linger_ms / 1000
            continue
        state["runtime"].pop(pod_key, None)
        remove(state, "Pod", namespace, pod["metadata"]["name"])
    for kind in ("StatefulSet", "Service"):
        for obj in objects_of(state, kind, namespace):
            if obj["metadata"]["labels"].get("app.kubernetes.io/instance") == release:
                remove(state, kind, namespace, obj["metadata"]["name"])
    finish_protected_claims(state, namespace)


def finish_protected_claims(state, namespace):
    """Completes the deletion of Terminating claims whose pod has gone."""
    for claim in objects_of(state, "PersistentVolumeClaim", namespace):
        name = claim["metadata"]["name"]
        if claim["metadata"].get("deletionTimestamp") and not claim_in_use(state, namespace, name):
            delete_claim(state, namespace, name)


def delete_claim(state, namespace, name):
    volume = volume_dir(namespace, name)
    stop_server(volume)
    shutil.rmtree(volume, ignore_errors=True)
    return remove(state, "PersistentVolumeClaim", namespace, name)


# ---------------------------------------------------------------------------------------------
# kubectl


def parse_flags(args, with_value, booleans=(), double_dash_positional=False):
    """Splits args into positionals and flags. Unknown flags are an error, like kubectl's.
    After `--`, kubectl exec keeps the command apart (flags["--"]); helm reads positionals."""
    positionals, flags, index = [], {}, 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            if double_dash_positional:
                positionals.extend(args[index + 1:])
            else:
                flags["--"] = args[index + 1:]
            break
        if arg.startswith("-") and arg != "-":
            name, _, inline = arg.partition("=")
            if name in with_value:
                if inline:
                    value = inline
                else:
                    index += 1
                    if index >= len(args):
                        die(f"error: flag needs an argument: {name}")
                    value = args[index]
                flags.setdefault(with_value[name], []).append(value)
            elif name in booleans:
                flags[booleans[name]] = inline or "true"
            else:
                die(f"error: unknown flag: {name}\nSee 'kubectl --help' for usage.")
        else:
            positionals.append(arg)
        index += 1
    return positionals, flags


KUBECTL_COMMON = {"-n": "namespace", "--namespace": "namespace", "--context": "context",
                  "--kubeconfig": "kubeconfig", "--request-timeout": "request-timeout"}


def kubectl(args):
    if not args:
        die("kubectl: missing command")
    command, rest = args[0], args[1:]
    active = faults()
    if command == "version":
        return kubectl_version(rest, active)
    if "api-down" in active:
        die(API_DOWN)
    if "forbidden" in active and command != "config":
        die('Error from server (Forbidden): pods is forbidden: User "sim" cannot list resource "pods" '
            'in API group "" in the namespace "learnflow"')
    if "echo-input" in active and command in ("apply", "replace", "delete", "patch", "create"):
        echo_input_and_fail("kubectl", args)
    handlers = {"get": kubectl_get, "apply": kubectl_apply, "replace": kubectl_replace,
                "delete": kubectl_delete, "wait": kubectl_wait, "patch": kubectl_patch,
                "exec": kubectl_exec, "logs": kubectl_logs, "port-forward": kubectl_port_forward,
                "config": kubectl_config, "annotate": kubectl_annotate, "label": kubectl_label}
    if command not in handlers:
        die(f'error: unknown command "{command}" for "kubectl"')
    sim_cnpg.operate()
    return handlers[command](rest)


def kubectl_version(args, active):
    _, flags = parse_flags(args, dict(KUBECTL_COMMON, **{"-o": "output", "--output": "output"}),
                           {"--client": "client"})
    minor = "20" if "kubectl-old" in active else "32"
    client = {"major": "1", "minor": minor, "gitVersion": f"v1.{minor}.4", "platform": "linux/amd64"}
    document = {"clientVersion": client, "kustomizeVersion": "v5.5.0"}
    if "client" not in flags:
        if "api-down" in active:
            print(json.dumps(document, indent=2))
            die(API_DOWN)
        document["serverVersion"] = {"major": "1", "minor": "31", "gitVersion": "v1.31.0", "platform": "linux/amd64"}
    print(json.dumps(document, indent=2))


def kubectl_wait(args):
    """`kubectl wait --for=condition=ready pod -l SELECTOR --timeout=30s` (what shell scripts use)."""
    positionals, flags = parse_flags(args, dict(KUBECTL_COMMON, **{"--for": "for", "-l": "selector",
                                                                   "--selector": "selector",
                                                                   "--timeout": "timeout"}))
    namespace = flags.get("namespace", ["default"])[-1]
    deadline = time.time() + parse_go_duration(flags.get("timeout", ["30s"])[-1])
    while True:
        sim_cnpg.operate()
        state = read_state()
        pods = [p for p in objects_of(state, "Pod", namespace)
                if matches_selector(p, flags.get("selector", [""])[-1])]
        if pods and all(pod_ready(state, pod) for pod in pods):
            for pod in pods:
                print(f"pod/{pod['metadata']['name']} condition met")
            return
        if time.time() >= deadline:
            die("error: timed out waiting for the condition on pods")
        time.sleep(0.2)


def kubectl_config(args):
    if args[:1] == ["current-context"]:
        print("kind-pgk8s-sim")
        return
    die(f"error: unknown config command {args}")


def resolve_targets(positionals):
    """[(kind, name or None)] from `pods,pvc`, `pod/x svc/y` or `secret a b`."""
    targets = []
    if len(positionals) >= 2 and "/" not in positionals[0] and "," not in positionals[0]:
        kind = kind_named(positionals[0])
        if kind is None:
            die(f'error: the server doesn\'t have a resource type "{positionals[0]}"')
        return [(kind, name) for name in positionals[1:]]
    for item in positionals:
        if "/" in item:
            kind_name, name = item.split("/", 1)
            kind = kind_named(kind_name)
            if kind is None:
                die(f'error: the server doesn\'t have a resource type "{kind_name}"')
            targets.append((kind, name))
        else:
            for kind_name in item.split(","):
                kind = kind_named(kind_name)
                if kind is None:
                    die(f'error: the server doesn\'t have a resource type "{kind_name}"')
                targets.append((kind, None))
    return targets


def kind_named(name):
    """The kind a resource name means, or None when the API server does not serve it (a custom
    resource whose CustomResourceDefinition is not installed)."""
    kind = KINDS.get(name)
    return kind if kind and sim_cnpg.served(kind) else None


def matches_selector(obj, selector_text):
    if not selector_text:
        return True
    for requirement in selector_text.split(","):
        name, _, value = requirement.partition("=")
        if obj["metadata"].get("labels", {}).get(name) != value:
            return False
    return True


def refresh_readiness(state, obj):
    """What a read shows now: pods whose readiness was switched off for a while (pgk8s-sim
    not-ready) report it, a crash-looping pod's restarts go up with the kubelet's back-off, a
    claim's pending file system resize finishes when due."""
    if obj["kind"] == "PersistentVolumeClaim":
        shown = copy.deepcopy(obj)
        return shown if settle_resize(state, shown) else obj
    if obj["kind"] != "Pod":
        return obj
    shown = copy.deepcopy(obj)
    runtime = state["runtime"].get(key("Pod", obj["metadata"]["namespace"], obj["metadata"]["name"]), {})
    waiting = [c.get("state", {}).get("waiting", {}).get("reason") for c in obj["status"].get("containerStatuses", [])]
    if runtime.get("crash_log") and "CrashLoopBackOff" in waiting:
        crash_status(shown, runtime)
    if not pod_ready(state, obj) and obj["status"].get("phase") == "Running":
        for condition in shown["status"].get("conditions", []):
            if condition["type"] in ("Ready", "ContainersReady"):
                condition["status"] = "False"
        for container in shown["status"].get("containerStatuses", []):
            container["ready"] = False
    return shown


def kubectl_get(args):
    positionals, flags = parse_flags(
        args, dict(KUBECTL_COMMON, **{"-o": "output", "--output": "output", "-l": "selector",
                                     "--selector": "selector"}),
        {"--ignore-not-found": "ignore"})
    namespace = flags.get("namespace", ["default"])[-1]
    output = flags.get("output", [""])[-1]
    selector_text = flags.get("selector", [""])[-1]
    targets = resolve_targets(positionals)
    if "namespace-forbidden" in faults() and any(kind == "Namespace" for kind, _ in targets):
        die(f'Error from server (Forbidden): namespaces "{namespace}" is forbidden: User "dev" cannot get '
            'resource "namespaces" in API group "" in the namespace')
    if "storageclass-forbidden" in faults() and any(kind == "StorageClass" for kind, _ in targets):
        die('Error from server (Forbidden): storageclasses.storage.k8s.io is forbidden: User "dev" cannot '
            'list resource "storageclasses" in API group "storage.k8s.io" at the cluster scope')
    state = read_state()
    ensure_defaults_view(state)
    found, missing = [], []
    for kind, name in targets:
        if name is None:
            found += [o for o in objects_of(state, kind, namespace) if matches_selector(o, selector_text)]
        else:
            obj = get(state, kind, namespace, name)
            if obj is None:
                missing.append((kind, name))
            else:
                found.append(obj)
    found = [refresh_readiness(state, obj) for obj in found]
    if missing and "ignore" not in flags:
        kind, name = missing[0]
        die(f'Error from server (NotFound): {PLURAL[kind]} "{name}" not found')
    if output == "" and found and all(kind == "StorageClass" for kind, _ in targets):
        print_storage_classes(found)
        return
    if output == "" and found and all(kind == "Cluster" for kind, _ in targets):
        sim_cnpg.print_clusters(found)
        return
    if output != "json":
        for obj in found:
            print(f"{obj['kind'].lower()}/{obj['metadata']['name']}")
        return
    single = len(targets) == 1 and targets[0][1] is not None
    if single:
        if found:
            print(json.dumps(found[0], indent=2))
        return
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": found,
                      "metadata": {"resourceVersion": ""}}, indent=2))


def age(timestamp):
    try:
        then = datetime.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return "<unknown>"
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def print_storage_classes(classes):
    """`kubectl get storageclass` as a table, the columns kubectl 1.34 prints."""
    rows = [("NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION", "AGE")]
    for sc in classes:
        default = sc["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"
        rows.append((sc["metadata"]["name"] + (" (default)" if default else ""), sc.get("provisioner", ""),
                     sc.get("reclaimPolicy", "Delete"), sc.get("volumeBindingMode", "Immediate"),
                     str(bool(sc.get("allowVolumeExpansion"))).lower(),
                     age(sc["metadata"].get("creationTimestamp"))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def ensure_defaults_view(state):
    ensure_cluster_defaults(state)
    if "no-default-storageclass" in faults():
        state["objects"][key("StorageClass", None, "standard")]["metadata"]["annotations"] = {}


def kubectl_apply(args):
    document, flags = read_manifest(args, "apply")
    fault = write_fault()
    if fault == "before":
        die('Error from server (InternalError): error when applying patch: etcdserver: request timed out')
    items = document.get("items", []) if document.get("kind") == "List" else [document]
    default_namespace = flags.get("namespace", ["default"])[-1]
    refused = []
    with locked_state() as state:
        ensure_cluster_defaults(state)
        for item in items:
            kind, meta = item["kind"], item["metadata"]
            # Custom resources without their CRD, admission webhooks, API-server defaulting.
            refusal = sim_cnpg.admit(state, item, default_namespace)
            if refusal:
                refused.append(refusal)
                continue
            if kind not in CLUSTER_SCOPED:
                meta.setdefault("namespace", default_namespace)
                if get(state, "Namespace", None, meta["namespace"]) is None:
                    die(f'Error from server (NotFound): error when creating "STDIN": namespaces "{meta["namespace"]}" not found')
            existing = get(state, kind, meta.get("namespace"), meta["name"])
            if (kind == "Secret" and existing is not None
                    and existing.get("type", "Opaque") != item.get("type", "Opaque")):
                # The API server's validation: a Secret's type never changes.
                refused.append(f'The Secret "{meta["name"]}" is invalid: type: Invalid value: '
                               f'"{item.get("type", "Opaque")}": field is immutable')
                continue
            if kind == "Namespace":
                item.setdefault("status", {"phase": "Active"})
            if kind == "PersistentVolumeClaim":
                item = apply_claim(state, existing, item)
                meta = item["metadata"]
            elif existing is not None and "status" in existing and "status" not in item:
                item["status"] = copy.deepcopy(existing["status"])
            if existing is None:
                verb = "created"
            else:
                comparable = {k: v for k, v in existing.items() if k not in ("apiVersion",)}
                comparable["metadata"] = {k: v for k, v in existing["metadata"].items()
                                          if k not in ("creationTimestamp", "uid", "resourceVersion")}
                verb = "unchanged" if comparable == {k: v for k, v in item.items() if k != "apiVersion"} else "configured"
                meta["creationTimestamp"] = existing["metadata"].get("creationTimestamp")
                meta["uid"] = existing["metadata"].get("uid")
            put(state, item)
            print(f"{resource_ref(kind)}/{meta['name']} {verb}")
    if refused:
        die("\n".join(refused))
    if fault == "after":
        die('Error from server (InternalError): error when applying patch: etcdserver: request timed out')


def apply_claim(state, existing, item):
    """A claim applied: a new one gets the default StorageClass (the DefaultStorageClass admission
    plugin) and is provisioned and Bound at its requested size; a changed one is checked and
    grown like a patched one."""
    if existing is not None:
        updated = merge_patch(existing, {k: v for k, v in item.items() if k != "status"})
        check_claim_update(state, existing, updated)
        resize_claim(state, updated)
        return updated
    spec = item.setdefault("spec", {})
    spec.setdefault("accessModes", ["ReadWriteOnce"])
    spec.setdefault("volumeMode", "Filesystem")
    if not spec.get("storageClassName"):
        spec["storageClassName"] = default_storage_class(state)
    name = item["metadata"]["name"]
    size = claim_size(item)
    if size is None or quantity(size) is None:
        die(f'The PersistentVolumeClaim "{name}" is invalid: spec.resources[storage]: Required value')
    if get(state, "StorageClass", None, spec["storageClassName"]) is None:
        item["status"] = {"phase": "Pending"}
        add_event(state, item["metadata"]["namespace"], "PersistentVolumeClaim", name, "ProvisioningFailed",
                  f'storageclass.storage.k8s.io "{spec["storageClassName"]}" not found')
    else:
        item["status"] = {"phase": "Bound", "accessModes": list(spec["accessModes"]),
                          "capacity": {"storage": size}}
    return item


def echo_input_and_fail(tool, args):
    """A tool that fails and echoes what it was given, as some do in verbose or error output:
    its argv and its stdin (Secret manifests, values) go to stderr."""
    payload = b"" if sys.stdin.isatty() else sys.stdin.buffer.read()
    log_call(tool, args, len(payload), phase="stdin")
    sys.stderr.write(f"error: {tool} {' '.join(args)} failed for input:\n")
    sys.stderr.write(payload.decode(errors="replace") + "\n")
    die("Error from server (InternalError): the request was echoed back and refused")


def read_manifest(args, verb):
    _, flags = parse_flags(args, dict(KUBECTL_COMMON, **{"-f": "file", "--filename": "file",
                                                        "-o": "output"}))
    if flags.get("file") != ["-"]:
        die(f"error: the simulated kubectl only {verb}s manifests from stdin (-f -)")
    payload = sys.stdin.buffer.read()
    log_call("kubectl", [verb] + args, len(payload), phase="stdin")
    try:
        document = json.loads(payload)
    except ValueError:
        import yaml
        document = yaml.safe_load(payload)
    return document, flags


def write_fault():
    """How this write (apply or replace) fails, if it does: "before" it takes effect, "after", or
    None. PGK8S_FAKE_WRITES_OK=N lets a caller's first N writes through before the faults apply."""
    active = faults()
    allowed = os.environ.get("PGK8S_FAKE_WRITES_OK")
    if allowed is not None:
        # Counted per calling process, so each pgk8s run gets its N writes.
        with locked_state() as state:
            writes = state.setdefault("writes", {})
            caller = str(os.getppid())
            writes[caller] = writes.get(caller, 0) + 1
            if writes[caller] <= int(allowed):
                return None
    if "write-fails-after-effect" in active:
        return "after"
    if "apply-fails" in active or allowed is not None:
        return "before"
    return None


def kubectl_replace(args):
    """`kubectl replace -f - [-o json]`: the whole object, refused on a stale resourceVersion."""
    item, flags = read_manifest(args, "replace")
    fault = write_fault()
    if fault == "before":
        die('Error from server (InternalError): error when replacing "STDIN": etcdserver: request timed out')
    kind, meta = item["kind"], item["metadata"]
    namespace = meta.setdefault("namespace", flags.get("namespace", ["default"])[-1])
    plural = PLURAL.get(kind, kind.lower() + "s")
    with locked_state() as state:
        existing = get(state, kind, namespace, meta["name"])
        if existing is None:
            die(f'Error from server (NotFound): error when replacing "STDIN": {plural} "{meta["name"]}" not found')
        wanted = meta.get("resourceVersion")
        if wanted and wanted != existing["metadata"].get("resourceVersion"):
            die(f'Error from server (Conflict): error when replacing "STDIN": Operation cannot be fulfilled '
                f'on {plural} "{meta["name"]}": the object has been modified; please apply your changes '
                f'to the latest version and try again')
        meta["creationTimestamp"] = existing["metadata"].get("creationTimestamp")
        meta["uid"] = existing["metadata"].get("uid")
        put(state, item)
    if fault == "after":
        die('Error from server (InternalError): error when replacing "STDIN": etcdserver: request timed out')
    if flags.get("output") == ["json"]:
        print(json.dumps(item))
    else:
        print(f"{kind.lower()}/{meta['name']} replaced")


def cascade_mode(flags):
    """kubectl's --cascade: background (the default), foreground or orphan; the old booleans
    still work, with kubectl's warning."""
    value = flags.get("cascade", ["background"])[-1]
    if value in ("true", "false"):
        replacement = "background" if value == "true" else "orphan"
        sys.stderr.write(f"warning: --cascade={value} is deprecated (boolean value) and can be replaced "
                         f"with --cascade={replacement}.\n")
        return replacement
    if value not in ("background", "foreground", "orphan"):
        die(f'error: invalid cascade value ({value}). Must be "background", "foreground", or "orphan".')
    return value


def delete_statefulset(state, namespace, name, cascade):
    """A StatefulSet's deletion: its pods go too (servers stopped as SIGTERM stops them: fast),
    its claims stay (the chart sets no persistentVolumeClaimRetentionPolicy). Orphaned, the pods
    keep running without an owner until a StatefulSet adopts them."""
    remove(state, "StatefulSet", namespace, name)
    for pod in objects_of(state, "Pod", namespace):
        owners = pod["metadata"].get("ownerReferences", [])
        if not any(o.get("kind") == "StatefulSet" and o.get("name") == name for o in owners):
            continue
        if cascade == "orphan":
            kept = [o for o in owners if not (o.get("kind") == "StatefulSet" and o.get("name") == name)]
            if kept:
                pod["metadata"]["ownerReferences"] = kept
            else:
                pod["metadata"].pop("ownerReferences", None)
            put(state, pod)
            continue
        runtime = state["runtime"].pop(key("Pod", namespace, pod["metadata"]["name"]), {})
        if runtime.get("volume"):
            stop_server(runtime["volume"])
        remove(state, "Pod", namespace, pod["metadata"]["name"])


def delete_pod(state, namespace, name):
    """A pod's deletion stops its server (fast). When a StatefulSet owns it, the controller
    creates it again at once and the server starts anew on the same claim."""
    pod = get(state, "Pod", namespace, name)
    runtime = state["runtime"].pop(key("Pod", namespace, name), {})
    if runtime.get("volume"):
        stop_server(runtime["volume"])
    owner = next((o["name"] for o in pod["metadata"].get("ownerReferences", [])
                  if o.get("kind") == "StatefulSet"), None)
    release = pod["metadata"].get("labels", {}).get("app.kubernetes.io/instance")
    record = state["releases"].get(f"{namespace}/{release}")
    if owner and get(state, "StatefulSet", namespace, owner) and record:
        pod["metadata"]["uid"] = f"sim-{os.urandom(6).hex()}"
        pod["metadata"]["creationTimestamp"] = now()
        put(state, pod)
        values = record["values"]
        start_pods(state, release, namespace, values,
                   values.get("auth", {}).get("existingSecret") or fullname(release), restart=False)
        return
    remove(state, "Pod", namespace, name)


def kubectl_delete(args):
    positionals, flags = parse_flags(
        args, dict(KUBECTL_COMMON, **{"--timeout": "timeout", "--wait": "wait", "--cascade": "cascade",
                                      "-l": "selector", "--selector": "selector"}),
        {"--ignore-not-found": "ignore"})
    namespace = flags.get("namespace", ["default"])[-1]
    cascade = cascade_mode(flags)
    protected = []
    with locked_state() as state:
        targets = resolve_targets(positionals)
        if "selector" in flags:
            # `kubectl delete KIND -l SELECTOR`: every object of the kind with those labels.
            selector_text = flags["selector"][-1]
            targets = [(kind, o["metadata"]["name"]) for kind, name in targets if name is None
                       for o in objects_of(state, kind, namespace) if matches_selector(o, selector_text)]
            if not targets:
                print(f"No resources found in {namespace} namespace.")
        for kind, name in targets:
            if get(state, kind, namespace, name) is None:
                if "ignore" in flags:
                    continue
                die(f'Error from server (NotFound): {PLURAL[kind]} "{name}" not found')
            if kind == "Namespace":
                for release_key in [k for k in state["releases"] if k.startswith(name + "/")]:
                    release = state["releases"].pop(release_key)
                    delete_release_objects(state, release["name"], name)
                for pod in objects_of(state, "Pod", name):
                    runtime = state["runtime"].pop(key("Pod", name, pod["metadata"]["name"]), {})
                    if runtime.get("volume"):
                        stop_server(runtime["volume"])
                for claim in objects_of(state, "PersistentVolumeClaim", name):
                    delete_claim(state, name, claim["metadata"]["name"])
                for object_key in [k for k, o in state["objects"].items()
                                   if o["metadata"].get("namespace") == name]:
                    state["objects"].pop(object_key)
                remove(state, "Namespace", None, name)
            elif kind == "PersistentVolumeClaim" and claim_in_use(state, namespace, name):
                # kubernetes.io/pvc-protection: a claim in use stays Terminating, data intact,
                # until its pod is gone (as kube-controller-manager v1.34 does).
                claim = get(state, "PersistentVolumeClaim", namespace, name)
                claim["metadata"].setdefault("deletionTimestamp", now())
                claim["metadata"]["finalizers"] = ["kubernetes.io/pvc-protection"]
                protected.append(name)
            elif kind == "PersistentVolumeClaim":
                delete_claim(state, namespace, name)
            elif kind == "StatefulSet":
                delete_statefulset(state, namespace, name, cascade)
            elif kind == "Pod":
                delete_pod(state, namespace, name)
            elif kind == "Cluster":
                sim_cnpg.delete_cluster(state, namespace, name)
            else:
                remove(state, kind, namespace, name)
            print(f'{resource_ref(kind)} "{name}" deleted')
        finish_protected_claims(state, namespace)
    if protected and flags.get("wait", ["true"])[-1] != "false":
        time.sleep(parse_go_duration(flags.get("timeout", ["0s"])[-1]) or 30)
        die(f"error: timed out waiting for the condition on persistentvolumeclaims/{protected[0]}")


def resource_ref(kind):
    """How kubectl names a kind in its messages: `statefulset.apps/x`, `persistentvolumeclaim/x`."""
    return RESOURCE_REF.get(kind, kind.lower())


QUANTITY_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                  "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity(text):
    """A Kubernetes quantity (`8Gi`, `500M`, `1e9`) in bytes, or None when it is not one."""
    found = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", str(text).strip())
    if not found:
        return None
    return float(found.group(1)) * QUANTITY_UNITS[found.group(2) or ""]


def merge_patch(target, patch):
    """RFC 7386 JSON merge patch (a strategic merge patch is the same for the fields used here)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result


def claim_size(claim):
    return claim.get("spec", {}).get("resources", {}).get("requests", {}).get("storage")


def check_claim_update(state, old, new):
    """What kube-apiserver v1.34 says about an update of a claim: validation first (a bound
    claim's spec is immutable but for its requests; storage may not come down to its
    status.capacity), then the PersistentVolumeClaimResize admission plugin (growing needs a class
    with allowVolumeExpansion). Exits like kubectl on a refusal. The texts are those of the
    real-control-plane tier (the immutable-spec one without the object diff the server adds)."""
    name = old["metadata"]["name"]
    invalid = f'The PersistentVolumeClaim "{name}" is invalid: '
    old_size, new_size = claim_size(old), claim_size(new)
    if quantity(new_size) is None:
        die(f"The request is invalid: patch: Invalid value: {json.dumps(json.dumps(new))}: quantities must "
            "match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
    bound = old.get("status", {}).get("phase") == "Bound"
    old_spec, new_spec = copy.deepcopy(old.get("spec", {})), copy.deepcopy(new.get("spec", {}))
    if bound:
        for spec in (old_spec, new_spec):
            spec.get("resources", {}).get("requests", {}).pop("storage", None)
            spec.pop("volumeAttributesClassName", None)
    if old_spec != new_spec:
        die(f"{invalid}spec: Forbidden: spec is immutable after creation except resources.requests "
            "and volumeAttributesClassName for bound claims")
    capacity = old.get("status", {}).get("capacity", {}).get("storage")
    if quantity(new_size) < quantity(old_size) and capacity and quantity(new_size) <= quantity(capacity):
        # RecoverVolumeExpansionFailure (GA in v1.34): a request may come down after a failed
        # expansion, but never to the capacity the volume has.
        die(f"{invalid}spec.resources.requests.storage: Forbidden: field can not be less than status.capacity")
    if quantity(new_size) > quantity(old_size):
        storage_class = get(state, "StorageClass", None, old["spec"].get("storageClassName") or "")
        if not (storage_class or {}).get("allowVolumeExpansion"):
            die(f'Error from server (Forbidden): persistentvolumeclaims "{name}" is forbidden: only '
                "dynamically provisioned pvc can be resized and the storageclass that provisions the "
                "pvc must support resize")


def resize_claim(state, claim):
    """The external resizer and the kubelet growing a claim to its request: status.capacity
    follows at once, or after a FileSystemResizePending phase of PGK8S_FAKE_RESIZE_PENDING_MS."""
    size = claim_size(claim)
    status = claim.setdefault("status", {})
    if quantity(status.get("capacity", {}).get("storage", "0")) >= quantity(size):
        return
    status["allocatedResources"] = {"storage": size}
    pending_ms = int(os.environ.get("PGK8S_FAKE_RESIZE_PENDING_MS", "0") or 0)
    runtime_key = key("PersistentVolumeClaim", claim["metadata"]["namespace"], claim["metadata"]["name"])
    if pending_ms > 0:
        status["conditions"] = [{
            "type": "FileSystemResizePending", "status": "True", "lastProbeTime": None,
            "lastTransitionTime": now(),
            "message": "Waiting for user to (re-)start a pod to finish file system resize of volume on node."}]
        state["runtime"][runtime_key] = {"resized_at": time.time() + pending_ms / 1000, "size": size}
    else:
        state["runtime"].pop(runtime_key, None)
        status.pop("conditions", None)
        status["capacity"] = dict(status.get("capacity", {}), storage=size)


def settle_resize(state, claim):
    """A pending file system resize that is due: capacity becomes the new size."""
    runtime_key = key("PersistentVolumeClaim", claim["metadata"].get("namespace"), claim["metadata"]["name"])
    pending = state["runtime"].get(runtime_key)
    if pending and time.time() >= pending["resized_at"]:
        status = claim.setdefault("status", {})
        status["capacity"] = dict(status.get("capacity", {}), storage=pending["size"])
        status.pop("conditions", None)
        return True
    return False


def kubectl_patch(args):
    """`kubectl patch KIND/NAME -n NS --type merge -p JSON`: a merge patch of one object; claims
    are checked as the API server checks them and grow (status.capacity follows)."""
    positionals, flags = parse_flags(args, dict(KUBECTL_COMMON, **{
        "-p": "patch", "--patch": "patch", "--type": "type", "--subresource": "subresource"}))
    namespace = flags.get("namespace", ["default"])[-1]
    targets = resolve_targets(positionals)
    if not targets or any(name is None for _, name in targets):
        die("error: resource(s) were provided, but no name was specified")
    patch_type = flags.get("type", ["strategic"])[-1]
    if patch_type not in ("json", "merge", "strategic"):
        die(f'error: --type must be one of [json merge strategic], not "{patch_type}"')
    if patch_type == "json":
        die("error: the simulated kubectl applies merge and strategic patches only")
    if "patch" not in flags:
        die("error: must specify --patch or --patch-file containing the contents of the patch")
    text = flags["patch"][-1]
    try:
        patch = json.loads(text)
    except ValueError:
        import yaml
        try:
            patch = yaml.safe_load(text)
        except yaml.YAMLError as error:
            die(f"error: unable to parse \"{text}\": {error}")
    printed = []
    with locked_state() as state:
        ensure_cluster_defaults(state)
        for kind, name in targets:
            obj = get(state, kind, namespace, name)
            if obj is None:
                die(f'Error from server (NotFound): {PLURAL[kind]} "{name}" not found')
            updated = patched(obj, patch, flags.get("subresource", [None])[-1])
            if kind == "PersistentVolumeClaim":
                check_claim_update(state, obj, updated)
            if updated == obj:
                printed.append(f"{resource_ref(kind)}/{name} patched (no change)")
                continue
            if kind == "PersistentVolumeClaim":
                resize_claim(state, updated)
            put(state, updated)
            printed.append(f"{resource_ref(kind)}/{name} patched")
    print("\n".join(printed))


def patched(obj, patch, subresource):
    """An object after a merge patch. Through the status subresource only the status changes;
    through the main resource of a custom resource with a status subresource (a Cluster), the
    status does not (as the API server handles both)."""
    if subresource == "status":
        updated = copy.deepcopy(obj)
        updated["status"] = merge_patch(obj.get("status", {}), (patch or {}).get("status", {}))
        return updated
    if subresource:
        die(f'error: invalid subresource value: "{subresource}". Must be one of [status scale]')
    if obj["kind"] in sim_cnpg.STATUS_SUBRESOURCE:
        patch = {k: v for k, v in (patch or {}).items() if k != "status"}
    return merge_patch(obj, patch)


def kubectl_annotate(args, field="annotations"):
    """`kubectl annotate|label TYPE/NAME [TYPE NAME] KEY=VALUE... KEY-... [--overwrite]`, as
    kubectl does it: a key that has a value is changed only with --overwrite; `KEY-` removes."""
    positionals, flags = parse_flags(args, KUBECTL_COMMON, {"--overwrite": "overwrite"})
    namespace = flags.get("namespace", ["default"])[-1]
    overwrite = flags.get("overwrite", "false") == "true"
    changes = [p for p in positionals if "=" in p or p.endswith("-")]
    resources = [p for p in positionals if p not in changes]
    if not changes:
        die(f"error: at least one {field[:-1]} update is required")
    targets = resolve_targets(resources)
    if not targets or any(name is None for _, name in targets):
        die("error: one or more resources must be specified as <resource> <name> or <resource>/<name>")
    printed, refusal = [], None
    with locked_state() as state:
        for kind, name in targets:
            obj = get(state, kind, namespace, name)
            if obj is None:
                refusal = f'Error from server (NotFound): {PLURAL[kind]} "{name}" not found'
                break
            values = dict(obj["metadata"].get(field) or {})
            for change in changes:
                name_, sep, value = change.partition("=")
                if not sep:
                    values.pop(change[:-1], None)
                    continue
                if name_ in values and not overwrite:
                    refusal = (f"error: --overwrite is false but found the following declared "
                               f"annotation(s): '{name_}' already has a value ({values[name_]})"
                               if field == "annotations" else
                               f"error: '{name_}' already has a value ({values[name_]}), and --overwrite is false")
                    break
                values[name_] = value
            if refusal:
                break
            if values != (obj["metadata"].get(field) or {}):
                obj["metadata"][field] = values
                if not values:
                    obj["metadata"].pop(field)
                put(state, obj)
            printed.append(f"{resource_ref(kind)}/{name} {'annotated' if field == 'annotations' else 'labeled'}")
    if printed:
        print("\n".join(printed))
    if refusal:
        die(refusal)


def kubectl_label(args):
    kubectl_annotate(args, field="labels")


def pod_for_exec(namespace, name, container):
    state = read_state()
    pod = get(state, "Pod", namespace, name)
    if pod is None:
        die(f'Error from server (NotFound): pods "{name}" not found')
    containers = [c["name"] for c in pod["spec"]["containers"]]
    if container and container not in containers:
        die(f"error: container {container} is not valid for pod {name}")
    runtime = state["runtime"].get(key("Pod", namespace, name), {})
    container_running = pod["status"].get("phase") == "Running" and runtime.get("port")
    if not container_running:
        die(f'error: unable to upgrade connection: container not found ("{container or containers[0]}")')
    secret_name = next((v["secret"]["secretName"] for v in pod["spec"]["volumes"] if "secret" in v), None)
    return state, runtime, get(state, "Secret", namespace, secret_name) if secret_name else None


def mirror_secret_mount(namespace, pod_name, secret):
    """The pod's view of the Secret volume, refreshed on every exec (as the kubelet syncs it)."""
    base = os.path.join(sim_dir(), "mounts", namespace, pod_name)
    os.makedirs(base, exist_ok=True)
    # A fresh directory per exec: concurrent execs never see a half-written mount.
    mount = tempfile.mkdtemp(dir=base)
    for name in (secret or {}).get("data", {}):
        with open(os.path.join(mount, name), "w") as handle:
            handle.write(secret_value(secret, name))
    return mount


def pod_environment(runtime):
    """The exec'd command's environment: the pod major's server binaries first on PATH, then
    the newest full client installation, then the machine's (client_dirs)."""
    dirs = runtime.get("client_dirs") or client_dirs(runtime.get("bindir") or machine_bindir())
    return dict({
        "PATH": ":".join(dirs + ["/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": "/tmp", "LANG": "C.UTF-8",
        "PGHOST": "127.0.0.1", "PGPORT": str(runtime.get("port") or 1),
    }, **runtime.get("env", {}))


def kubectl_exec(args):
    positionals, flags = parse_flags(
        args, dict(KUBECTL_COMMON, **{"-c": "container", "--container": "container"}),
        {"-i": "stdin", "--stdin": "stdin", "-t": "tty", "--tty": "tty", "-it": "stdin", "-ti": "stdin"})
    namespace = flags.get("namespace", ["default"])[-1]
    command = flags.get("--")
    if not positionals or not command:
        die("error: expected 'exec POD_NAME -- COMMAND [args...]'")
    pod_name = positionals[0]
    _, runtime, secret = pod_for_exec(namespace, pod_name, flags.get("container", [None])[-1])
    mount = mirror_secret_mount(namespace, pod_name, secret)
    command = [part.replace(SECRETS_DIR, mount) for part in command]
    for pod_path, local_path in runtime.get("paths", {}).items():
        command = [part.replace(pod_path, local_path) for part in command]
    drop_after = os.environ.get("PGK8S_FAKE_EXEC_DROP_AFTER")
    child = subprocess.Popen(command, stdin=subprocess.PIPE if "stdin" in flags else subprocess.DEVNULL,
                             env=pod_environment(runtime), start_new_session=True)
    pumped = {"bytes": 0, "dropped": False}

    def pump():
        """Forwards our stdin to the command, like the exec stream; cuts it on the drop fault."""
        limit = int(drop_after) if drop_after else None
        with contextlib.suppress(BrokenPipeError, OSError):
            while True:
                chunk = os.read(0, 65536)
                if not chunk:
                    break
                if limit is not None and pumped["bytes"] + len(chunk) >= limit:
                    child.stdin.write(chunk[: max(0, limit - pumped["bytes"])])
                    pumped["bytes"] = limit
                    pumped["dropped"] = True
                    os.killpg(child.pid, signal.SIGKILL)
                    return
                child.stdin.write(chunk)
                child.stdin.flush()
                pumped["bytes"] += len(chunk)
            child.stdin.close()

    if "stdin" in flags:
        threading.Thread(target=pump, daemon=True).start()
    # Like kubectl, finish when the remote command exits, whether or not stdin is still open.
    code = child.wait()
    if pumped["dropped"]:
        log_call("kubectl", ["exec"] + args, pumped["bytes"], phase="exit", dropped=True)
        sys.stderr.write("error: lost connection to pod: read tcp 10.0.0.2:51234->10.0.0.1:10250: "
                         "connection reset by peer\n")
        sys.stderr.flush()
        os._exit(1)
    log_call("kubectl", ["exec"] + args, pumped["bytes"], phase="exit", exit_code=code)
    if code != 0:
        sys.stderr.write(f"command terminated with exit code {code}\n")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


CRASH_LOG = [
    "postgresql 10:00:00.00 INFO  ==> ** Starting PostgreSQL setup **",
    "postgresql 10:00:00.10 INFO  ==> Loading custom pre-init scripts...",
    "2026-11-25 10:00:01.000 GMT [1] FATAL:  could not map anonymous shared memory: Cannot allocate memory",
]


def kubectl_logs(args):
    positionals, flags = parse_flags(args, dict(KUBECTL_COMMON, **{"-c": "container", "--tail": "tail"}),
                                     {"-f": "follow", "--follow": "follow", "--previous": "previous"})
    namespace = flags.get("namespace", ["default"])[-1]
    state = read_state()
    if positionals:
        positionals[0] = sim_cnpg.log_target(state, namespace, positionals[0])
    pod = get(state, "Pod", namespace, positionals[0]) if positionals else None
    if pod is None:
        die(f'Error from server (NotFound): pods "{positionals[0] if positionals else ""}" not found')
    runtime = state["runtime"].get(key("Pod", namespace, positionals[0]), {})
    tail = int(flags.get("tail", ["-1"])[-1])
    if runtime.get("log_lines") is not None:
        lines = runtime["log_lines"]
        flags.pop("follow", None)
    elif runtime.get("crash_log"):
        # A container that exits at start: the current and the previous run printed the same.
        lines = runtime["crash_log"]
        flags.pop("follow", None)
    elif not runtime.get("volume") or "previous" in flags:
        lines = CRASH_LOG
    else:
        lines = []
        with contextlib.suppress(FileNotFoundError), open(
                os.path.join(runtime["volume"], "postgresql.log"), errors="replace") as handle:
            lines = handle.read().splitlines()
        lines = sim_cnpg.log_lines(runtime, lines)
    if tail >= 0:
        lines = lines[-tail:] if tail else []
    for line in lines:
        print(line)
    sys.stdout.flush()
    if "follow" in flags and runtime.get("volume"):
        with open(os.path.join(runtime["volume"], "postgresql.log"), errors="replace") as handle:
            handle.seek(0, os.SEEK_END)
            while True:
                line = handle.readline()
                if line:
                    sys.stdout.write("".join(f"{shown}\n" for shown in sim_cnpg.log_lines(runtime, [line.rstrip("\n")])))
                    sys.stdout.flush()
                else:
                    time.sleep(0.2)


def kubectl_port_forward(args):
    positionals, flags = parse_flags(args, dict(KUBECTL_COMMON, **{"--address": "address"}))
    namespace = flags.get("namespace", ["default"])[-1]
    target, ports = positionals[0], positionals[1]
    local, _, remote = ports.partition(":")
    state = read_state()
    kind, _, name = target.partition("/")
    pod = None
    if KINDS.get(kind) == "Service":
        service = get(state, "Service", namespace, name)
        if service is None:
            die(f'Error from server (NotFound): services "{name}" not found')
        pods = [p for p in objects_of(state, "Pod", namespace)
                if all(p["metadata"]["labels"].get(k) == v for k, v in service["spec"]["selector"].items())]
        pod = pods[0] if pods else None
    else:
        pod = get(state, "Pod", namespace, name)
    if pod is None:
        die("error: unable to forward port because pod is not running. Current status=Pending")
    runtime = state["runtime"].get(key("Pod", namespace, pod["metadata"]["name"]), {})
    backend = runtime.get("port")
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("127.0.0.1", int(local or 0)))
    except OSError as error:
        die(f"Unable to listen on port {local}: Listeners failed to create with the following errors: "
            f"[unable to create listener: Error listen tcp4 127.0.0.1:{local}: bind: {error.strerror.lower()}]\n"
            f"error: unable to listen on any of the requested ports: [{{{local} {remote}}}]")
    listener.listen(16)
    print(f"Forwarding from 127.0.0.1:{listener.getsockname()[1]} -> {remote}", flush=True)
    exit_after = os.environ.get("PGK8S_FAKE_PORT_FORWARD_EXIT_AFTER_MS")
    if exit_after:
        threading.Timer(int(exit_after) / 1000, lambda: os._exit(1)).start()

    def pipe(source, sink):
        with contextlib.suppress(OSError):
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    while True:
        client, _ = listener.accept()
        print(f"Handling connection for {listener.getsockname()[1]}", flush=True)
        upstream = socket.create_connection(("127.0.0.1", backend))
        threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


# ---------------------------------------------------------------------------------------------
# helm


HELM_COMMON = {"-n": "namespace", "--namespace": "namespace", "--kube-context": "context",
               "--kubeconfig": "kubeconfig"}


def helm_major():
    return os.environ.get("PGK8S_FAKE_HELM_VERSION", "4")


def helm(args):
    if not args:
        die("helm: missing command")
    command, rest = args[0], args[1:]
    if command == "version":
        version = "v3.19.0" if helm_major() == "3" else "v4.1.4"
        if "--template" in rest:
            sys.stdout.write(version)
        else:
            print(f"{version}+gsim")
        return
    if "api-down" in faults():
        die(HELM_API_DOWN)
    if "echo-input" in faults() and command in ("upgrade", "install", "uninstall", "rollback"):
        echo_input_and_fail("helm", args)
    handlers = {"upgrade": helm_upgrade, "status": helm_status, "uninstall": helm_uninstall,
                "list": helm_list, "get": helm_get, "rollback": helm_rollback}
    if command not in handlers:
        die(f'Error: unknown command "{command}" for "helm"')
    sim_cnpg.operate()
    handlers[command](rest)


def helm_flag_error(name):
    die(f"Error: unknown flag: {name}")


def helm_upgrade(args):
    booleans = {"--install": "install", "-i": "install", "--create-namespace": "create-namespace",
                "--atomic": "atomic", "--wait": "wait"}
    if helm_major() == "4":
        booleans["--rollback-on-failure"] = "atomic"
    with_value = dict(HELM_COMMON, **{"--version": "version", "--timeout": "timeout", "-f": "values",
                                     "--values": "values"})
    positionals, flags = parse_flags(args, with_value, booleans, double_dash_positional=True)
    wait = flags.get("wait", "false")
    if wait not in ("true", "false", "watcher", "hookOnly", "legacy") or (helm_major() == "3" and wait not in ("true", "false")):
        die(f'Error: invalid argument "{wait}" for "--wait" flag: strconv.ParseBool: parsing "{wait}": invalid syntax')
    if helm_major() == "4" and "--atomic" in args:
        sys.stderr.write("Flag --atomic has been deprecated, use --rollback-on-failure instead\n")
    if len(positionals) != 2:
        die(f'Error: "helm upgrade" requires 2 arguments\n\nUsage:  helm upgrade [RELEASE] [CHART] [flags]')
    release, chart = positionals
    namespace = flags.get("namespace", ["default"])[-1]
    timeout = parse_go_duration(flags.get("timeout", ["5m0s"])[-1])
    values, stdin_bytes = {}, None
    for source in flags.get("values", []):
        if source == "-":
            payload = sys.stdin.buffer.read()
            stdin_bytes = len(payload)
            text = payload.decode()
        else:
            try:
                with open(source) as handle:
                    text = handle.read()
            except OSError:
                die(f"Error: open {source}: no such file or directory")
        import yaml
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            die(f"Error: failed to parse {source}: error converting YAML to JSON: {error}")
        if not isinstance(loaded, dict):
            die(f"Error: failed to parse {source}: error unmarshaling JSON: cannot unmarshal into Go value of type map[string]interface {{}}")
        values = deep_merge(values, loaded)
    log_call("helm", ["upgrade"] + args, stdin_bytes, phase="stdin")
    if sim_cnpg.is_operator_chart(chart):
        return sim_cnpg.helm_upgrade(release, chart, namespace, values, flags, timeout, args, stdin_bytes)
    release_key = f"{namespace}/{release}"
    with locked_state() as state:
        ensure_cluster_defaults(state)
        if get(state, "Namespace", None, namespace) is None:
            if "create-namespace" not in flags:
                die(f'Error: INSTALLATION FAILED: create: failed to create: namespaces "{namespace}" not found')
            put(state, {"kind": "Namespace", "metadata": {"name": namespace}, "status": {"phase": "Active"}})
        previous = state["releases"].get(release_key)
        if previous and previous["status"].startswith("pending-"):
            die("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress")
        installing = previous is None
        if installing and "install" not in flags:
            die(f'Error: UPGRADE FAILED: "{release}" has no deployed releases')
        revision = 1 if installing else previous["revision"] + 1
        # helm 4 applies server-side what it installed (--server-side=auto); helm 3 never does.
        server_side = previous.get("server_side", False) if previous else helm_major() == "4"
        refuse_immutable_change(state, release, namespace, values, flags, server_side)
        if not installing and previous["values"].get("architecture") != values.get("architecture"):
            delete_release_objects(state, release, namespace)
        secret_name = render_release(state, release, namespace, values)
        # Only pods whose template changed restart (render_release marks them), as a
        # StatefulSet's rolling update does; a StatefulSet made anew adopts running pods.
        ready = start_pods(state, release, namespace, values, secret_name, restart=False)
        state["releases"][release_key] = {
            "name": release, "namespace": namespace, "revision": revision, "chart": chart,
            "chart_version": flags.get("version", ["17.1.0"])[-1], "values": values,
            "status": "deployed" if ready or "wait" not in flags else "pending-install",
            "first_deployed": previous["first_deployed"] if previous else now(), "last_deployed": now(),
            "server_side": server_side,
            "history": (previous or {}).get("history", []) + ([previous["values"]] if previous else []),
        }
    if installing:
        print(f'Release "{release}" does not exist. Installing it now.')
        sys.stdout.flush()
    helm_wait_ms = os.environ.get("PGK8S_FAKE_HELM_WAIT_MS")
    if helm_wait_ms and ready:
        wait_like_helm(release, namespace, int(helm_wait_ms) / 1000, installing, previous, "atomic" in flags)
    if not ready and "wait" in flags:
        time.sleep(timeout)
        # The outcome is saved before helm's message (an exit inside locked_state would drop it).
        with locked_state() as state:
            record = state["releases"][release_key]
            if "atomic" in flags and installing:
                delete_release_objects(state, release, namespace, linger=True)
                state["releases"].pop(release_key)
                what = "atomic" if helm_major() == "3" else "rollback-on-failure"
                message = (f"Error: INSTALLATION FAILED: release {release} failed, and has been "
                           f"uninstalled due to {what} being set: context deadline exceeded")
            elif "atomic" in flags:
                record["values"] = previous["values"]
                record["revision"] += 1
                record["status"] = "deployed"
                secret_name = render_release(state, release, namespace, previous["values"])
                start_pods(state, release, namespace, previous["values"], secret_name, restart=False)
                message = (f"Error: UPGRADE FAILED: release {release} failed, and has been rolled back "
                           "due to atomic being set: context deadline exceeded")
            else:
                record["status"] = "failed"
                verb = "INSTALLATION" if installing else "UPGRADE"
                message = f"Error: {verb} FAILED: context deadline exceeded"
        die(message)
    log_call("helm", ["upgrade"] + args, stdin_bytes, phase="exit")
    print(f"NAME: {release}\nLAST DEPLOYED: {now()}\nNAMESPACE: {namespace}\nSTATUS: deployed\n"
          f"REVISION: {revision}\nTEST SUITE: None\nNOTES:\nCHART NAME: postgresql\nCHART VERSION: 17.1.0\n"
          f"APP VERSION: {CHART_APP_VERSION}")


def wait_like_helm(release, namespace, seconds, installing, previous, atomic):
    """What helm does while it waits for readiness: the release stays pending-install or
    pending-upgrade. SIGINT/SIGTERM cancel the wait; with --atomic (--rollback-on-failure) helm
    then undoes the release, as real helm does. A SIGKILL leaves it pending."""
    release_key = f"{namespace}/{release}"
    with locked_state() as state:
        state["releases"][release_key]["status"] = "pending-install" if installing else "pending-upgrade"

    def cancelled(signum, _frame):
        log_call("helm", ["upgrade", release], phase="signal", signal=signum)
        print(f"Release {release} has been cancelled.")
        sys.stdout.flush()
        with locked_state() as state:
            record = state["releases"][release_key]
            if atomic and installing:
                delete_release_objects(state, release, namespace)
                state["releases"].pop(release_key)
            elif atomic:
                record["values"] = previous["values"]
                record["revision"] += 1
                record["status"] = "deployed"
                secret_name = render_release(state, release, namespace, previous["values"])
                start_pods(state, release, namespace, previous["values"], secret_name, restart=False)
            else:
                record["status"] = "failed"
        verb = "INSTALLATION" if installing else "UPGRADE"
        die(f"Error: {verb} FAILED: context canceled")

    signal.signal(signal.SIGTERM, cancelled)
    signal.signal(signal.SIGINT, cancelled)
    time.sleep(seconds)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    with locked_state() as state:
        state["releases"][release_key]["status"] = "deployed"


def helm_rollback(args):
    """`helm rollback [flags] -- RELEASE [REVISION]`: back to the previous values."""
    positionals, flags = parse_flags(args, dict(HELM_COMMON, **{"--timeout": "timeout"}),
                                     {"--wait": "wait"}, double_dash_positional=True)
    namespace = flags.get("namespace", ["default"])[-1]
    release = positionals[0]
    with locked_state() as state:
        record = state["releases"].get(f"{namespace}/{release}")
        if record is None:
            die(f"Error: release: not found")
        if not record.get("history"):
            die(f"Error: release has no 1 version")
        values = record["history"][-1]
        record["history"] = record["history"][:-1]
        record.update(values=values, revision=record["revision"] + 1, status="deployed",
                      last_deployed=now())
        secret_name = render_release(state, release, namespace, values)
        start_pods(state, release, namespace, values, secret_name, restart=True)
    print("Rollback was a success! Happy Helming!")


def refuse_immutable_change(state, release, namespace, new_values, flags, server_side):
    """What the real API server answers when an upgrade changes a live StatefulSet's
    volumeClaimTemplates (size or class of a volume, an existingClaim set or unset): 422 Invalid,
    worded "spec: Forbidden", and helm rolls back. Observed on kube-apiserver v1.34 with helm 3.19
    and 4.1 (the real-control-plane tier). A StatefulSet that is gone (deleted with
    --cascade=orphan) is created anew by helm, with the new templates: no refusal. helm 4 on a
    release it installed applies server-side (its default) and then says no `cannot patch`."""
    for component, sts, _, persistence, _ in workloads(release, new_values):
        live = get(state, "StatefulSet", namespace, sts)
        if live is None:
            continue
        if live["spec"].get("volumeClaimTemplates", []) == claim_templates(component, persistence):
            continue
        patching = "" if server_side and helm_major() == "4" else f'cannot patch "{sts}" with kind StatefulSet: '
        reason = (f'{patching}StatefulSet.apps "{sts}" is invalid: '
                  "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', "
                  "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                  "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")
        if helm_major() == "4":
            sys.stderr.write(f'level=WARN msg="upgrade failed" name={release} error={json.dumps(reason)}\n')
        if "atomic" in flags:
            what = "atomic" if helm_major() == "3" else "rollback-on-failure"
            die(f"Error: UPGRADE FAILED: release {release} failed, and has been rolled back due to {what} being set: {reason}")
        die(f"Error: UPGRADE FAILED: {reason}")


def parse_go_duration(text):
    total, number = 0.0, ""
    units = {"h": 3600, "m": 60, "s": 1}
    for char in text:
        if char.isdigit() or char == ".":
            number += char
        elif char in units and number:
            total += float(number) * units[char]
            number = ""
        else:
            die(f'Error: invalid argument "{text}" for "--timeout" flag: time: invalid duration "{text}"')
    return total + (float(number) if number else 0)


def helm_status_document(record):
    """As helm 3.19 and 4.1 print it: no `chart` key (helm strips it); the chart shows in the
    manifest's `helm.sh/chart` labels."""
    manifest = (f"---\n# Source: postgresql/templates/primary/svc.yaml\napiVersion: v1\nkind: Service\n"
                f"metadata:\n  name: {fullname(record['name'])}\n  labels:\n"
                f"    app.kubernetes.io/instance: {record['name']}\n"
                f"    helm.sh/chart: postgresql-{record['chart_version']}\n")
    return {"name": record["name"], "namespace": record["namespace"], "version": record["revision"],
            "info": {"first_deployed": record["first_deployed"], "last_deployed": record["last_deployed"],
                     "deleted": "", "description": "Install complete", "status": record["status"]},
            "config": record["values"], "manifest": record.get("manifest", manifest)}


def helm_status(args):
    positionals, flags = parse_flags(args, dict(HELM_COMMON, **{"-o": "output", "--output": "output"}), double_dash_positional=True)
    namespace = flags.get("namespace", ["default"])[-1]
    record = read_state()["releases"].get(f"{namespace}/{positionals[0]}")
    if record is None:
        die("Error: release: not found")
    print(json.dumps(helm_status_document(record)))


def helm_get(args):
    positionals, flags = parse_flags(args[1:], dict(HELM_COMMON, **{"-o": "output", "--output": "output"}))
    namespace = flags.get("namespace", ["default"])[-1]
    record = read_state()["releases"].get(f"{namespace}/{positionals[0]}")
    if record is None:
        die("Error: release: not found")
    print(json.dumps(record["values"]))


def helm_list(args):
    _, flags = parse_flags(args, dict(HELM_COMMON, **{"-o": "output", "--output": "output"}))
    namespace = flags.get("namespace", ["default"])[-1]
    records = [r for r in read_state()["releases"].values() if r["namespace"] == namespace]
    print(json.dumps([{"name": r["name"], "namespace": r["namespace"], "revision": str(r["revision"]),
                       "status": r["status"], "chart": f"{r.get('chart_name', 'postgresql')}-{r['chart_version']}",
                       "app_version": r.get("app_version", CHART_APP_VERSION)} for r in records]))


def helm_uninstall(args):
    positionals, flags = parse_flags(args, dict(HELM_COMMON, **{"--timeout": "timeout"}), {"--wait": "wait"}, double_dash_positional=True)
    namespace = flags.get("namespace", ["default"])[-1]
    release = positionals[0]
    kept = None
    with locked_state() as state:
        record = state["releases"].pop(f"{namespace}/{release}", None)
        if record is None:
            die(f"Error: uninstall: Release not loaded: {release}: release: not found")
        if sim_cnpg.is_operator_chart(record["chart"]):
            kept = sim_cnpg.uninstall_operator(state, record)
        else:
            delete_release_objects(state, release, namespace)
    if kept:
        print(kept)
    print(f'release "{release}" uninstalled')


# ---------------------------------------------------------------------------------------------
# pgk8s-sim: the tests' control command


def control(args):
    if not args:
        die("usage: pgk8s-sim teardown | restart NS POD | not-ready NS POD SECONDS | db-down NS POD | port NS POD"
            " | major NS POD | majors | age-release NS RELEASE SECONDS")
    command = args[0]
    if command == "majors":
        # majors: each PostgreSQL major a pod can run here, with its server binaries.
        for major, bindir in available_majors().items():
            version = bindir_version(bindir)
            print(f"{major} {version[1] if version else '?'} {bindir}")
        return
    if command == "teardown":
        state = read_state()
        for runtime in state["runtime"].values():
            if runtime.get("volume"):
                stop_server(runtime["volume"], mode="immediate")
        return
    if command == "age-release":
        # age-release NS RELEASE SECONDS: the release last changed that long ago.
        with locked_state() as state:
            record = state["releases"][f"{args[1]}/{args[2]}"]
            then = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=float(args[3]))
            record["last_deployed"] = then.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")
        return
    namespace, pod_name = args[1], args[2]
    with locked_state() as state:
        runtime = state["runtime"].get(key("Pod", namespace, pod_name))
        if runtime is None:
            die(f"pgk8s-sim: no running pod {namespace}/{pod_name}")
        if command == "restart" and runtime.get("cnpg"):
            sim_cnpg.restart_instance(state, namespace, pod_name)
        elif command == "restart":
            stop_server(runtime["volume"])
            try:
                runtime["port"] = start_server(runtime["volume"], runtime.get("bindir") or machine_bindir())
            except ServerFailed as failure:
                die("\n".join(failure.lines))
            runtime.pop("server_down", None)
        elif command == "major":
            # major NS POD: the major the pod's server really runs (its image's, or the machine's
            # when the image's is not installed).
            pod = get(state, "Pod", namespace, pod_name)
            print(runtime.get("major") or pod_server(pod["spec"]["containers"][0]["image"])[0])
        elif command == "not-ready":
            runtime["not_ready_until"] = time.time() + float(args[3])
        elif command == "db-down":
            stop_server(runtime["volume"])
            runtime["server_down"] = True
            runtime["not_ready_until"] = time.time() + 3600
        elif command == "port":
            print(runtime["port"])
        else:
            die(f"pgk8s-sim: unknown command {command}")


def main():
    tool = os.path.basename(sys.argv[0])
    args = sys.argv[1:]
    if tool.endswith(".py"):
        tool, args = (args[0], args[1:]) if args else ("", [])
    latency = os.environ.get("PGK8S_FAKE_LATENCY_MS")
    if tool in ("kubectl", "helm"):
        log_call(tool, args, phase="start")
        api_down_after = os.environ.get("PGK8S_FAKE_API_DOWN_AFTER_CALLS")
        if api_down_after and calls_made() > int(api_down_after) and args[:2] != ["version", "--client"]:
            die(API_DOWN if tool == "kubectl" else HELM_API_DOWN)
        if latency:
            time.sleep(int(latency) / 1000)
    if tool == "kubectl":
        kubectl(args)
    elif tool == "helm":
        helm(args)
    elif tool == "pgk8s-sim":
        control(args)
    else:
        die(f"pgk8s_sim: invoked as {tool!r}; link it as kubectl, helm or pgk8s-sim")


if __name__ == "__main__":
    main()
