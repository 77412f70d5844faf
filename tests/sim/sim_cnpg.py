"""The CloudNativePG operator in the simulated cluster (imported by pgk8s_sim.py).

Modelled on CloudNativePG v1.30.0 with its chart cloudnative-pg 0.29.0, from the facts sheet
/work/cnpg_facts.md (paths below are the operator's source at tag v1.30.0) and, where the sheet
left a question, that source itself.

Operator install. `helm upgrade --install RELEASE oci://ghcr.io/cloudnative-pg/charts/cloudnative-pg`
(or `cnpg/cloudnative-pg`) records the release (chart cloudnative-pg-0.29.0, app version 1.30.0;
other chart versions map to their operator as the chart tags do) and creates the CRDs of the chart
(11 with 0.29.0, 10 before: `clusters.postgresql.cnpg.io` and the others, kept by `helm uninstall`
as `helm.sh/resource-policy: keep` says, with helm's "These resources were kept" lines), the
Deployment `<release>-cloudnative-pg` (container `manager`, labels of the chart), its pod and
`cnpg-webhook-service`. Faults (PGK8S_FAKE_FAULTS): `cnpg-operator-down` - the operator's pod is
not ready (Deployment availableReplicas 0: `helm --wait` times out, and the fail-closed admission
webhooks refuse Cluster writes with the API server's "no endpoints available" error, as the facts
sheet, section 10, warns); `cnpg-operator-stuck` - the Deployment is available and admits Clusters
but nothing is reconciled (Clusters stay without pods).

The Cluster API. Kind `Cluster` (group postgresql.cnpg.io/v1; `cluster`, `clusters`,
`clusters.postgresql.cnpg.io`, no short names) is served only while its CRD exists: without it
`kubectl get` does not know the resource type and `kubectl apply` fails with kubectl's "resource
mapping not found ... ensure CRDs are installed first" after applying the rest of the list.
While the operator is installed its mutating webhook defaults the spec (api/v1/cluster_defaults.go:
imageName ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie, bootstrap.initdb database `app`
and owner = database, enableSuperuserAccess false, the update strategy, anti-affinity, PDB and
delay defaults). The status is a subresource (`kubectl patch --subresource=status`); `kubectl get
cluster` prints the CRD's printer columns.

Reconciliation. The operator works in steps (pkg/reconciler, internal/controller/cluster_*.go),
caught up at the start of every later kubectl/helm call: one step is due PGK8S_FAKE_CNPG_STEP_MS
(default 300) after the previous one, and a change to the Cluster makes the next one due at once,
so a caller polling quickly sees every phase while one polling slowly sees the outcome. Steps:
  1. status.targetPrimary `<c>-1`, phase `Setting up primary` ("Creating primary instance
     <c>-1"); Secrets `<c>-app` (only without bootstrap.initdb.secret; 64 random characters, the
     keys of pkg/specs/secrets.go) and `<c>-superuser` (only with enableSuperuserAccess and no
     superuserSecret); Services `<c>-rw`/`-ro`/`-r` with the selectors of pkg/specs/services.go;
     PodDisruptionBudgets `<c>-primary` and, from 3 instances, `<c>`; PVC `<c>-1` (labels
     cnpg.io/cluster, cnpg.io/instanceName, cnpg.io/pvcRole=PG_DATA, annotation cnpg.io/pvcStatus
     initializing -> ready) and Job `<c>-1-initdb` (or `<c>-1-import`), whose pod
     `<job>-xxxxx` does the work: a real initdb (superuser `postgres` without a password, UTF8,
     locale C), the roles streaming_replica and the owner, the database owned by the owner.
  2. Pod `<c>-1` (container `postgres`, labels cnpg.io/cluster, cnpg.io/instanceName,
     cnpg.io/podRole=instance, app.kubernetes.io/*, then cnpg.io/instanceRole and `role`,
     ownerReference to the Cluster): the server starts on the volume; currentPrimary is set. Its
     instance manager sets the owner's password from the Secret named by bootstrap.initdb.secret
     (or `<c>-app`) when that Secret's resourceVersion is new, and logs the real error
     "wrong username '<x>' in secret, expected '<owner>'" (instance_controller.go reconcileUser)
     when its `username` is not the owner. As in v1.30.0, that error fails the instance manager's
     reconcile only: readiness is pg_isready (webserver/probes/isready.go), so the cluster still
     becomes healthy, and the owner has no password until the Secret is fixed.
  3. Each replica `<c>-n` (n the lowest unused serial): phase `Creating a new replica`
     ("Creating replica <c>-n-join"), PVC, Job `<c>-n-join` running a REAL pg_basebackup from the
     primary through the replication slot `_cnpg_<c>_n` (cluster_funcs.go), then the pod, a hot
     standby streaming from the primary with application_name=<pod> (pg_stat_replication on the
     primary: state streaming, sync_state async).
  4. `Cluster in healthy state` once every instance is ready and every replica streams; Ready
     condition True/ClusterIsReady/"Cluster is Ready" exactly then, else
     False/ClusterIsNotReady/"Cluster Is Not Ready". Fewer instances: the highest serial replica
     goes with its claim. A missing pod (deleted, or after hibernation) is made again on its
     claim (phase `Waiting for the instances to become active`, "Some instances are not yet
     active. Please wait.", as cluster_controller.go does for inactive instances).
Status: instances, readyInstances, instanceNames, instancesStatus, currentPrimary(+Timestamp),
targetPrimary(+Timestamp) in RFC3339Micro, timelineID (from the primary's WAL), systemID,
writeService/readService, selector, image, instancesReportedState, healthyPVC, pvcCount.

Pods. A pod's server runs the PostgreSQL major of the image tag (`17.11-system-trixie` -> 17),
through pgk8s_sim's majors machinery. pg_hba.conf as pkg/postgres/configuration.go writes it:
`local all all peer map=local` first and `host all all all scram-sha-256` last; pg_ident maps the
OS users of the pod (the server's and the one `kubectl exec` runs as here) to `postgres` only. So,
as in a CNPG pod, `kubectl exec POD -c postgres -- psql -U postgres` needs no password (PGHOST is
the pod's socket directory, which stands for /controller/run; that path in a command is mapped
too), `psql -U <owner>` over the socket fails with PostgreSQL's own "Peer authentication failed
for user", and over TCP the owner logs in with its password. `kubectl logs POD` shows the server
log as the instance manager does: one JSON line per record (logger `postgres`, msg `record`).
`kubectl port-forward svc/<c>-rw` reaches the current primary.

Switchover: a status patch of targetPrimary (what `kubectl cnpg promote` does) -> once the target
has replayed everything: CHECKPOINT and fast shutdown of the old primary, `pg_ctl promote` of the
target, slots made on it for the others, the other replicas pointed at it, pods and claims
relabelled, currentPrimary set; then the old primary is cloned again from the new one and rejoins
as a streaming replica; then healthy. A target that is not a ready instance resets targetPrimary.

Hibernation (pkg/reconciler/hibernation): annotation cnpg.io/hibernation=on on a healthy cluster
deletes the pods one per step, primary first (servers shut down fast), claims and data kept,
condition cnpg.io/hibernation False/DeletingPods then True/Hibernated ("Cluster has been
hibernated"), readyInstances 0, phase unchanged; on an unhealthy one False/WaitingForHealthy.
Any other value, or no annotation, removes the condition and the pods come back on their data.

Import (bootstrap.initdb.import, type microservice; pkg/management/postgres/logicalimport): the
job's temporary server runs with the import settings; the external cluster's host (`svc`,
`svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`) resolves to a ready pod the Service selects
(port 5432 of the Service to that server), its password comes from the referenced Secret key
through a passfile; a REAL `pg_dump -Fd -v` of the database, then `ALTER USER <owner> SUPERUSER`,
`pg_restore -U postgres --no-owner --no-privileges --role=<owner> -d <database> --section ...`
per section, NOSUPERUSER, postImportApplicationSQL, ANALYZE. A failed attempt leaves a Failed job
pod whose log holds pg_dump's own error; when the job's attempts are spent (Job condition
Failed/BackoffLimitExceeded) the phase is `Cluster is unrecoverable and needs manual intervention`
with "Instance creation failed for the following jobs: <c>-1-import. Check the job logs to
investigate the cause of the failure." and no pod is made. The source is only read.

Deletion: `kubectl delete cluster/<c>` removes what the Cluster owns, as the garbage collector
does through ownerReferences: pods (servers stopped), jobs and their pods, PVCs with their data,
services, PDBs and the operator-made Secrets; Secrets the user made stay.

Simplified (and why):
  - Time: steps advance when the cluster is looked at, not in the background; a job's retries
    come one step apart, not with the Job controller's back-off, and an import job fails after 2
    attempts (backoffLimit 1 in the Job's spec) instead of the Kubernetes default 6.
  - No TLS: `ssl` is off, and streaming_replica connects over 127.0.0.1 with `trust` where the
    operator uses client certificates (`hostssl ... cert map=cnpg_streaming_replica`); the
    servers listen on 127.0.0.1 and free ports, not 0.0.0.0:5432 (PGPORT in the pod is the port).
  - A switchover re-clones the old primary with pg_basebackup instead of pg_rewind (the 17 server
    packages have no pg_rewind); no failover: a deleted primary pod comes back as the primary.
  - No operator-side logs, events, Lease, ServiceAccount/Role, certificates, metrics, webhooks
    other than the admission described; imageName changes apply to pods made afterwards (no
    rolling update or major upgrade); spec.postgresql.parameters are written at volume creation.
  - monolith imports and the bootstrap methods other than initdb are not modelled (initdb runs).
  - Job, instance-manager and pg_dump log lines are JSON like the operator's but carry only the
    main keys.
"""

import base64
import contextlib
import copy
import datetime
import fcntl
import hashlib
import json
import os
import pwd
import random
import re
import shlex
import shutil
import socket
import string
import subprocess
import sys
import time

sim = None  # the pgk8s_sim module, bound by register()

GROUP = "postgresql.cnpg.io"
API = f"{GROUP}/v1"
CLUSTER_CRD = f"clusters.{GROUP}"
DEFAULT_IMAGE = "ghcr.io/cloudnative-pg/postgresql:18.4-system-trixie"
CHART_NAME = "cloudnative-pg"
LATEST_CHART = "0.29.0"
# Chart version -> operator version (the charts repository's tags).
CHART_APP_VERSIONS = {"0.26.0": "1.27.0", "0.26.1": "1.27.1", "0.27.0": "1.28.0", "0.27.1": "1.28.1",
                      "0.28.0": "1.29.0", "0.28.1": "1.29.1", "0.28.2": "1.29.1", "0.28.3": "1.29.1",
                      "0.29.0": "1.30.0"}
CRDS = [("backups", "Backup"), ("clusterimagecatalogs", "ClusterImageCatalog"), ("clusters", "Cluster"),
        ("databaseroles", "DatabaseRole"), ("databases", "Database"), ("failoverquorums", "FailoverQuorum"),
        ("imagecatalogs", "ImageCatalog"), ("poolers", "Pooler"), ("publications", "Publication"),
        ("scheduledbackups", "ScheduledBackup"), ("subscriptions", "Subscription")]
STATUS_SUBRESOURCE = {"Cluster"}

HEALTHY = "Cluster in healthy state"
SETTING_UP = "Setting up primary"
NEW_REPLICA = "Creating a new replica"
SWITCHOVER = "Switchover in progress"
WAITING = "Waiting for the instances to become active"
UNRECOVERABLE = "Cluster is unrecoverable and needs manual intervention"
HIBERNATION = "cnpg.io/hibernation"
IMPORT_BACKOFF_LIMIT = 1  # two attempts; Kubernetes' default is 6 (seven)
POD_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # k8s.io/apimachinery rand.String's letters

# Settings of the simulator's CNPG data directories: fast rather than durable, small, replication
# on. The operator's own mandatory settings (pkg/postgres/configuration.go) differ where said.
TEMPLATE_SETTINGS = ("\n# pgk8s simulator\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                     "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                     "shared_buffers = 16MB\nmax_connections = 40\nwal_level = replica\n"
                     "max_wal_senders = 10\nmax_replication_slots = 10\nhot_standby = on\n"
                     "wal_log_hints = on\nwal_keep_size = 64MB\nlog_line_prefix = '%m [%p] '\n"
                     "password_encryption = scram-sha-256\ninclude_if_exists = 'custom.conf'\n")

_crds = None  # names of the CRDs installed, as of this call's start


def register(module):
    """Teaches pgk8s_sim the kinds the operator brings."""
    global sim
    sim = module
    names = {
        "Cluster": ["cluster", "clusters", CLUSTER_CRD],
        "CustomResourceDefinition": ["crd", "crds", "customresourcedefinition", "customresourcedefinitions",
                                     "customresourcedefinitions.apiextensions.k8s.io"],
        "Deployment": ["deployment", "deployments", "deploy", "deployments.apps"],
        "Job": ["job", "jobs", "jobs.batch"],
        "PodDisruptionBudget": ["pdb", "pdbs", "poddisruptionbudget", "poddisruptionbudgets",
                                "poddisruptionbudgets.policy"],
    }
    for kind, aliases in names.items():
        for alias in aliases:
            module.KINDS[alias] = kind
    module.PLURAL.update({"Cluster": CLUSTER_CRD, "Deployment": "deployments.apps", "Job": "jobs.batch",
                          "CustomResourceDefinition": "customresourcedefinitions.apiextensions.k8s.io",
                          "PodDisruptionBudget": "poddisruptionbudgets.policy"})
    module.API_VERSION.update({"Cluster": API, "CustomResourceDefinition": "apiextensions.k8s.io/v1",
                               "Deployment": "apps/v1", "Job": "batch/v1", "PodDisruptionBudget": "policy/v1"})
    module.RESOURCE_REF.update({"Cluster": f"cluster.{GROUP}", "Deployment": "deployment.apps",
                                "Job": "job.batch", "PodDisruptionBudget": "poddisruptionbudget.policy",
                                "CustomResourceDefinition": "customresourcedefinition.apiextensions.k8s.io"})
    module.CLUSTER_SCOPED.add("CustomResourceDefinition")


def served(kind):
    """Whether the API server serves this kind now (a Cluster needs its CRD)."""
    if kind != "Cluster":
        return True
    if _crds is None:
        return True
    return CLUSTER_CRD in _crds


# ---------------------------------------------------------------------------------------------
# small helpers


def step_seconds():
    return int(os.environ.get("PGK8S_FAKE_CNPG_STEP_MS", "200") or 0) / 1000


def heavy(step):
    """Marks a step that runs PostgreSQL (initdb, a clone, a server start or stop)."""
    step.heavy = True
    return step


def now_micro():
    """RFC3339Micro, as the operator writes its timestamps."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def random_suffix(length=5):
    return "".join(random.choice(POD_ALPHABET) for _ in range(length))


def serial(name):
    tail = name.rsplit("-", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def slot_name(instance):
    """api/v1/cluster_funcs.go GetSlotNameFromInstanceName with the default prefix."""
    return "_cnpg_" + re.sub(r"[^a-z0-9_]+", "_", instance.lower())


def encode(value):
    return base64.b64encode(value.encode()).decode()


def owner_reference(obj):
    return {"apiVersion": obj.get("apiVersion", sim.API_VERSION.get(obj["kind"], "v1")), "kind": obj["kind"],
            "name": obj["metadata"]["name"], "uid": obj["metadata"]["uid"], "controller": True,
            "blockOwnerDeletion": True}


def owned_by(obj, uid):
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences", []))


def find_condition(status, kind):
    return next((c for c in status.get("conditions", []) if c["type"] == kind), None)


def set_condition(status, kind, value, reason, message):
    """meta.SetStatusCondition: lastTransitionTime moves only when the status flips."""
    conditions = status.setdefault("conditions", [])
    current = find_condition(status, kind)
    if current is None:
        current = {"type": kind, "lastTransitionTime": sim.now()}
        conditions.append(current)
    elif current.get("status") != value:
        current["lastTransitionTime"] = sim.now()
    current.update(status=value, reason=reason, message=message)


def remove_condition(status, kind):
    status["conditions"] = [c for c in status.get("conditions", []) if c["type"] != kind]


def os_user():
    return pwd.getpwuid(os.geteuid()).pw_name


def server_user():
    return "postgres" if os.geteuid() == 0 else os_user()


def json_line(**fields):
    return json.dumps(dict({"level": "info", "ts": now_micro()}, **fields))


class JobFailed(Exception):
    """A job attempt failed; `lines` is what its container printed."""

    def __init__(self, lines, error="exit status 1"):
        super().__init__("\n".join(lines))
        self.lines = lines
        self.error = error


# ---------------------------------------------------------------------------------------------
# PostgreSQL of the instances


def cache_dir():
    cache = os.environ.get("PGK8S_SIM_CACHE") or os.path.join(os.environ.get("TMPDIR", "/tmp"), "pgk8s-sim-cache")
    os.makedirs(cache, exist_ok=True)
    os.chmod(cache, 0o755)
    return cache


def template(major, bindir):
    """A data directory as the operator's initdb makes it (superuser `postgres`, no password,
    UTF8, locale C), cached per major and settings."""
    digest = hashlib.sha256(TEMPLATE_SETTINGS.encode()).hexdigest()[:8]
    path = os.path.join(cache_dir(), f"template-cnpg-{major}-{digest}")
    with open(path + ".lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(os.path.join(path, "PG_VERSION")):
            return path
        building = path + ".building"
        shutil.rmtree(building, ignore_errors=True)
        os.makedirs(building)
        sim.chown_postgres(building)
        subprocess.run(sim.as_postgres([
            os.path.join(bindir, "initdb"), "-D", building, "-U", "postgres", "-E", "UTF8", "--locale=C",
            "--auth-local=peer", "--auth-host=scram-sha-256", "--no-instructions", "-N"]),
            check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(building, "postgresql.conf"), "a") as conf:
            conf.write(TEMPLATE_SETTINGS)
        os.rename(building, path)
        return path


def socket_dir(namespace, pod):
    """The pod's /controller/run: a short path (a socket path has at most 107 bytes)."""
    base = os.path.join(sim.sim_dir(), "sock")
    if len(base) > 70:
        base = os.path.join("/tmp", "pgk8s-sock-" + hashlib.sha256(sim.sim_dir().encode()).hexdigest()[:10])
    path = os.path.join(base, hashlib.sha256(f"{namespace}/{pod}".encode()).hexdigest()[:10])
    os.makedirs(path, exist_ok=True)
    os.chmod(base, 0o755)
    sim.chown_postgres(path)
    return path


def write_file(path, text):
    """Writes in place (the owner of an existing file stays), then hands a new file to postgres."""
    existed = os.path.exists(path)
    with open(path, "w") as handle:
        handle.write(text)
    if not existed:
        sim.chown_postgres(path)


def write_instance_config(data, cluster):
    """pg_hba.conf and pg_ident.conf as the operator writes them (without its TLS lines), and the
    instance's custom.conf (cluster_name and spec.postgresql.parameters)."""
    users = sorted({server_user(), os_user()})
    write_file(os.path.join(data, "pg_hba.conf"), "\n".join([
        "# pg_hba.conf of a CloudNativePG instance (pkg/postgres/configuration.go); the simulator",
        "# has no TLS, so streaming_replica is trusted from 127.0.0.1 instead of `hostssl ... cert`.",
        "local all all peer map=local",
        "host replication streaming_replica 127.0.0.1/32 trust",
        "host postgres streaming_replica 127.0.0.1/32 trust",
        "host all all all scram-sha-256", ""]))
    write_file(os.path.join(data, "pg_ident.conf"), "".join(
        f"local {user} postgres\n" for user in users))
    parameters = dict(cluster["spec"].get("postgresql", {}).get("parameters") or {})
    parameters["cluster_name"] = cluster["metadata"]["name"]
    write_file(os.path.join(data, "custom.conf"), "".join(
        f"{name} = {sim.sql_literal(str(value))}\n" for name, value in sorted(parameters.items())))


def set_auto_conf(data, values):
    """Sets (or, for None, removes) settings in postgresql.auto.conf, as ALTER SYSTEM does."""
    path = os.path.join(data, "postgresql.auto.conf")
    lines = []
    if os.path.exists(path):
        with open(path) as handle:
            lines = [line.rstrip("\n") for line in handle
                     if line.split("=", 1)[0].strip() not in values]
    lines += [f"{name} = {sim.sql_literal(value)}" for name, value in values.items() if value is not None]
    write_file(path, "\n".join(lines) + "\n")


def psql(endpoint, sql, database="postgres", check=True):
    """SQL as `postgres` over the instance's socket (peer authentication, the OS user mapped)."""
    sock, port, dirs = endpoint
    result = subprocess.run(
        [sim.find_tool(dirs, "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", sock, "-p", str(port),
         "-U", "postgres", "-d", database, "-f", "-"],
        input=sql, capture_output=True, text=True, env=tool_env())
    if check and result.returncode != 0:
        raise RuntimeError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


def tool_env(**extra):
    return dict({"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp",
                 "LANG": "C.UTF-8"}, **extra)


def endpoint_of(runtime):
    return runtime["sock"], runtime["port"], runtime["client_dirs"]


def wait_streaming(primary, names, seconds=15):
    """Waits until the primary's pg_stat_replication shows each of these as streaming."""
    deadline = time.time() + seconds
    wanted = ",".join(sim.sql_literal(name) for name in names)
    while True:
        count = psql(primary, f"SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' "
                              f"AND application_name IN ({wanted})", check=False)
        if count == str(len(names)) or time.time() > deadline:
            return count == str(len(names))
        time.sleep(0.05)


def timeline(primary):
    found = psql(primary, "SELECT pg_walfile_name(pg_current_wal_lsn())", check=False)
    return int(found[:8], 16) if re.fullmatch(r"[0-9A-F]{24}", found or "") else 1


# ---------------------------------------------------------------------------------------------
# admission (kubectl apply)


def webhook_state(state):
    """None without the operator (no webhooks configured), else whether its webhook answers."""
    deployments = operator_deployments(state)
    if not deployments:
        return None
    return "cnpg-operator-down" not in sim.faults()


def admit(state, item, default_namespace):
    """What the API server does with an object kubectl applies before storing it: a refusal
    (text) for a Cluster without its CRD or when the webhook is down; Secret stringData folded
    into data; the Cluster's defaults, generation and status kept."""
    kind, meta = item.get("kind"), item.get("metadata", {})
    namespace = meta.get("namespace") or default_namespace
    if kind == "Secret" and "stringData" in item:
        data = item.setdefault("data", {})
        for name, value in item.pop("stringData").items():
            data[name] = encode(str(value))
    if item.get("apiVersion", "").split("/")[0] == GROUP or kind == "Cluster":
        crd = next((plural for plural, crd_kind in CRDS if crd_kind == kind), None)
        if crd is None or sim.get(state, "CustomResourceDefinition", None, f"{crd}.{GROUP}") is None:
            return (f'error: resource mapping not found for name: "{meta.get("name")}" namespace: "{namespace}" '
                    f'from "STDIN": no matches for kind "{kind}" in version "{item.get("apiVersion")}"\n'
                    "ensure CRDs are installed first")
    if kind != "Cluster":
        return None
    existing = sim.get(state, "Cluster", namespace, meta["name"])
    webhook = webhook_state(state)
    if webhook is False:
        return ('Error from server (InternalError): error when '
                f'{"creating" if existing is None else "applying patch"} "STDIN": Internal error occurred: '
                'failed calling webhook "mcluster.cnpg.io": failed to call webhook: Post '
                '"https://cnpg-webhook-service.cnpg-system.svc:443/mutate-postgresql-cnpg-io-v1-cluster?timeout=10s": '
                'no endpoints available for service "cnpg-webhook-service"')
    spec = item.setdefault("spec", {})
    spec.setdefault("instances", 1)  # the CRD's schema default
    if webhook:
        apply_defaults(spec)
    item.pop("status", None)
    if existing is not None:
        item["status"] = copy.deepcopy(existing.get("status", {}))
        generation = existing["metadata"].get("generation", 1)
        meta["generation"] = generation + (1 if existing.get("spec") != spec else 0)
    else:
        meta["generation"] = 1
    return None


def apply_defaults(spec):
    """The mutating webhook's defaults (api/v1/cluster_defaults.go and the kubebuilder markers)."""
    if not spec.get("imageName") and not spec.get("imageCatalogRef"):
        spec["imageName"] = DEFAULT_IMAGE
    bootstrap = spec.setdefault("bootstrap", {})
    if not any(method in bootstrap for method in ("initdb", "recovery", "pg_basebackup")):
        bootstrap["initdb"] = {}
    initdb = bootstrap.get("initdb")
    if initdb is not None:
        monolith = (initdb.get("import") or {}).get("type") == "monolith"
        if not monolith:
            initdb.setdefault("database", "app")
        if initdb.get("database"):
            initdb.setdefault("owner", initdb["database"])
        initdb.setdefault("encoding", "UTF8")
        initdb.setdefault("localeCollate", "C")
        initdb.setdefault("localeCType", "C")
    spec.setdefault("enableSuperuserAccess", False)
    spec.setdefault("primaryUpdateStrategy", "unsupervised")
    spec.setdefault("primaryUpdateMethod", "restart")
    affinity = spec.setdefault("affinity", {})
    affinity.setdefault("podAntiAffinityType", "preferred")
    affinity.setdefault("topologyKey", "kubernetes.io/hostname")
    spec.setdefault("enablePDB", True)
    spec.setdefault("postgresUID", 26)
    spec.setdefault("postgresGID", 26)
    for name, value in (("stopDelay", 1800), ("switchoverDelay", 3600), ("startDelay", 3600),
                        ("failoverDelay", 0), ("smartShutdownTimeout", 180), ("maxSyncReplicas", 0),
                        ("minSyncReplicas", 0), ("logLevel", "info")):
        spec.setdefault(name, value)
    spec.setdefault("storage", {}).setdefault("resizeInUseVolumes", True)
    slots = spec.setdefault("replicationSlots", {})
    slots.setdefault("highAvailability", {}).update(
        {k: v for k, v in (("enabled", True), ("slotPrefix", "_cnpg_")) if k not in slots["highAvailability"]})
    slots.setdefault("updateInterval", 30)


# ---------------------------------------------------------------------------------------------
# the operator's install (helm)


def is_operator_chart(chart):
    return chart.rstrip("/").rsplit("/", 1)[-1] == CHART_NAME


def operator_fullname(release):
    name = release if CHART_NAME in release else f"{release}-{CHART_NAME}"
    return name[:63].rstrip("-")


def operator_deployments(state):
    return [o for o in state["objects"].values() if o["kind"] == "Deployment"
            and o["metadata"].get("labels", {}).get("app.kubernetes.io/name") == CHART_NAME]


def chart_labels(release, chart_version, app_version):
    return {"helm.sh/chart": f"{CHART_NAME}-{chart_version}", "app.kubernetes.io/name": CHART_NAME,
            "app.kubernetes.io/instance": release, "app.kubernetes.io/version": app_version,
            "app.kubernetes.io/managed-by": "Helm"}


def crd_object(plural, kind, release, namespace):
    names = {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower()}
    version = {"name": "v1", "served": True, "storage": True, "subresources": {"status": {}}}
    if kind == "Cluster":
        version["subresources"]["scale"] = {"specReplicasPath": ".spec.instances",
                                            "statusReplicasPath": ".status.instances",
                                            "labelSelectorPath": ".status.selector"}
        version["additionalPrinterColumns"] = [
            {"jsonPath": ".metadata.creationTimestamp", "name": "Age", "type": "date"},
            {"description": "Number of instances", "jsonPath": ".status.instances", "name": "Instances",
             "type": "integer"},
            {"description": "Number of ready instances", "jsonPath": ".status.readyInstances", "name": "Ready",
             "type": "integer"},
            {"description": "Cluster current status", "jsonPath": ".status.phase", "name": "Status",
             "type": "string"},
            {"description": "Primary pod", "jsonPath": ".status.currentPrimary", "name": "Primary",
             "type": "string"}]
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {
        "name": f"{plural}.{GROUP}", "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {"helm.sh/resource-policy": "keep", "meta.helm.sh/release-name": release,
                        "meta.helm.sh/release-namespace": namespace}},
        "spec": {"group": GROUP, "names": names,
                 "scope": "Cluster" if kind == "ClusterImageCatalog" else "Namespaced", "versions": [version]},
        "status": {"acceptedNames": names, "storedVersions": ["v1"], "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found",
             "lastTransitionTime": sim.now()},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": sim.now()}]}}


def install_operator(state, release, namespace, values, chart_version, app_version):
    """The chart's objects: CRDs (unless crds.create is false), the Deployment and its pod, the
    webhook Service."""
    if (values.get("crds") or {}).get("create", True):
        for plural, kind in CRDS:
            if plural == "databaseroles" and app_version < "1.30":
                continue
            if sim.get(state, "CustomResourceDefinition", None, f"{plural}.{GROUP}") is None:
                sim.put(state, crd_object(plural, kind, release, namespace))
    name = operator_fullname(release)
    chart = chart_labels(release, chart_version, app_version)
    selector = {"app.kubernetes.io/name": CHART_NAME, "app.kubernetes.io/instance": release}
    image = f"ghcr.io/cloudnative-pg/cloudnative-pg:{app_version}"
    container = {"name": "manager", "image": image, "imagePullPolicy": "IfNotPresent",
                 "command": ["/manager"],
                 "args": ["controller", "--leader-elect", "--max-concurrent-reconciles=10",
                          "--config-map-name=cnpg-controller-manager-config", "--webhook-port=9443"],
                 "ports": [{"containerPort": 8080, "name": "metrics", "protocol": "TCP"},
                           {"containerPort": 9443, "name": "webhook-server", "protocol": "TCP"}],
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 9443, "scheme": "HTTPS"}}}
    template_hash = hashlib.sha256(image.encode()).hexdigest()[:10]
    live = sim.get(state, "Deployment", namespace, name)
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": name, "namespace": namespace, "labels": chart,
        "annotations": {"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}},
        "spec": {"replicas": int(values.get("replicaCount", 1)), "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": selector},
                              "spec": {"serviceAccountName": name, "containers": [container]}}},
        "status": {}}
    if live:
        deployment["metadata"].update(uid=live["metadata"]["uid"],
                                      creationTimestamp=live["metadata"]["creationTimestamp"])
    sim.put(state, deployment)
    if not [p for p in sim.objects_of(state, "Pod", namespace) if owned_by(p, deployment["metadata"]["uid"])]:
        pod_name = f"{name}-{template_hash}-{random_suffix()}"
        sim.put(state, {"kind": "Pod", "metadata": {
            "name": pod_name, "namespace": namespace,
            "labels": dict(selector, **{"pod-template-hash": template_hash}),
            "ownerReferences": [owner_reference(deployment)]},
            "spec": {"containers": [container], "serviceAccountName": name}, "status": {}})
        state["runtime"][sim.key("Pod", namespace, pod_name)] = {"log_lines": [
            json_line(msg="Starting CloudNativePG Operator", version=app_version),
            json_line(logger="setup", msg="Starting manager")]}
    sim.put(state, {"kind": "Service", "metadata": {
        "name": "cnpg-webhook-service", "namespace": namespace, "labels": chart},
        "spec": {"type": "ClusterIP", "selector": selector,
                 "ports": [{"port": 443, "targetPort": "webhook-server", "protocol": "TCP"}]}})
    sync_operator(state)
    return deployment


def sync_operator(state):
    """The operator's Deployment and pod as the fault switches make them now."""
    down = "cnpg-operator-down" in sim.faults()
    for deployment in operator_deployments(state):
        namespace, uid = deployment["metadata"]["namespace"], deployment["metadata"]["uid"]
        replicas = deployment["spec"]["replicas"]
        if down:
            status = {"replicas": replicas, "updatedReplicas": replicas, "unavailableReplicas": replicas,
                      "observedGeneration": 1, "conditions": [
                          {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                           "message": "Deployment does not have minimum availability."}]}
        else:
            status = {"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas,
                      "availableReplicas": replicas, "observedGeneration": 1, "conditions": [
                          {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
                           "message": "Deployment has minimum availability."}]}
        if deployment.get("status") != status:
            deployment["status"] = status
            sim.put(state, deployment)
        for pod in sim.objects_of(state, "Pod", namespace):
            if not owned_by(pod, uid):
                continue
            ready = "False" if down else "True"
            container = {"name": "manager", "image": pod["spec"]["containers"][0]["image"],
                         "ready": not down, "restartCount": 0, "started": True,
                         "state": {"running": {"startedAt": pod["metadata"]["creationTimestamp"]}}}
            wanted = {"phase": "Running", "podIP": "10.244.0.2", "conditions": [
                {"type": "Initialized", "status": "True"}, {"type": "Ready", "status": ready},
                {"type": "ContainersReady", "status": ready}, {"type": "PodScheduled", "status": "True"}],
                "containerStatuses": [container]}
            if pod.get("status") != wanted:
                pod["status"] = wanted
                sim.put(state, pod)


def operator_manifest(release, namespace, chart_version, app_version):
    labels = "".join(f"    {k}: {v}\n" for k, v in chart_labels(release, chart_version, app_version).items())
    return (f"---\n# Source: {CHART_NAME}/templates/crds/crds.yaml\napiVersion: apiextensions.k8s.io/v1\n"
            f"kind: CustomResourceDefinition\nmetadata:\n  name: {CLUSTER_CRD}\n  annotations:\n"
            f"    helm.sh/resource-policy: keep\n"
            f"---\n# Source: {CHART_NAME}/templates/deployment.yaml\napiVersion: apps/v1\nkind: Deployment\n"
            f"metadata:\n  name: {operator_fullname(release)}\n  namespace: {namespace}\n  labels:\n{labels}")


def helm_upgrade(release, chart, namespace, values, flags, timeout, args, stdin_bytes):
    """`helm upgrade --install` of the cloudnative-pg chart (helm 3 and 4 wording)."""
    chart_version = flags.get("version", [LATEST_CHART])[-1]
    app_version = CHART_APP_VERSIONS.get(chart_version)
    if app_version is None:
        reference = chart.split("://", 1)[-1]
        sim.die(f'Error: failed to perform "FetchReference" on source: {reference}:{chart_version}: not found')
    release_key = f"{namespace}/{release}"
    with sim.locked_state() as state:
        sim.ensure_cluster_defaults(state)
        if sim.get(state, "Namespace", None, namespace) is None:
            if "create-namespace" not in flags:
                sim.die(f'Error: INSTALLATION FAILED: create: failed to create: namespaces "{namespace}" not found')
            sim.put(state, {"kind": "Namespace", "metadata": {"name": namespace}, "status": {"phase": "Active"}})
        previous = state["releases"].get(release_key)
        if previous and previous["status"].startswith("pending-"):
            sim.die("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress")
        installing = previous is None
        if installing and "install" not in flags:
            sim.die(f'Error: UPGRADE FAILED: "{release}" has no deployed releases')
        install_operator(state, release, namespace, values, chart_version, app_version)
        ready = "cnpg-operator-down" not in sim.faults()
        revision = 1 if installing else previous["revision"] + 1
        state["releases"][release_key] = {
            "name": release, "namespace": namespace, "revision": revision, "chart": chart,
            "chart_name": CHART_NAME, "chart_version": chart_version, "app_version": app_version,
            "values": values, "status": "deployed" if ready or "wait" not in flags else "pending-install",
            "first_deployed": previous["first_deployed"] if previous else sim.now(), "last_deployed": sim.now(),
            "history": (previous or {}).get("history", []) + ([previous["values"]] if previous else []),
            "manifest": operator_manifest(release, namespace, chart_version, app_version)}
    if installing:
        print(f'Release "{release}" does not exist. Installing it now.')
        sys.stdout.flush()
    if not ready and "wait" in flags:
        time.sleep(timeout)
        with sim.locked_state() as state:
            record = state["releases"][release_key]
            what = "atomic" if sim.helm_major() == "3" else "rollback-on-failure"
            if "atomic" in flags and installing:
                state["releases"].pop(release_key)
                uninstall_operator(state, record)
                message = (f"Error: INSTALLATION FAILED: release {release} failed, and has been "
                           f"uninstalled due to {what} being set: context deadline exceeded")
            elif "atomic" in flags:
                record.update(values=previous["values"], revision=record["revision"] + 1, status="deployed")
                message = (f"Error: UPGRADE FAILED: release {release} failed, and has been rolled back "
                           f"due to {what} being set: context deadline exceeded")
            else:
                record["status"] = "failed"
                message = f"Error: {'INSTALLATION' if installing else 'UPGRADE'} FAILED: context deadline exceeded"
        sim.die(message)
    sim.log_call("helm", ["upgrade"] + args, stdin_bytes, phase="exit")
    if not installing:
        print(f'Release "{release}" has been upgraded. Happy Helming!')
    print(f"NAME: {release}\nLAST DEPLOYED: {sim.now()}\nNAMESPACE: {namespace}\nSTATUS: deployed\n"
          f"REVISION: {revision}\nTEST SUITE: None\nNOTES:\n"
          f'CloudNativePG operator should be installed in namespace "{namespace}".')


def uninstall_operator(state, record):
    """What `helm uninstall` removes of the chart: all but the CRDs (resource-policy keep).
    Returns helm's note on what it kept."""
    namespace, release = record["namespace"], record["name"]
    for deployment in [d for d in operator_deployments(state)
                       if d["metadata"]["namespace"] == namespace
                       and d["metadata"]["labels"].get("app.kubernetes.io/instance") == release]:
        for pod in sim.objects_of(state, "Pod", namespace):
            if owned_by(pod, deployment["metadata"]["uid"]):
                state["runtime"].pop(sim.key("Pod", namespace, pod["metadata"]["name"]), None)
                sim.remove(state, "Pod", namespace, pod["metadata"]["name"])
        sim.remove(state, "Deployment", namespace, deployment["metadata"]["name"])
    sim.remove(state, "Service", namespace, "cnpg-webhook-service")
    kept = [crd["metadata"]["name"] for crd in sim.objects_of(state, "CustomResourceDefinition", None)
            if crd["metadata"].get("annotations", {}).get("meta.helm.sh/release-name") == release]
    if not kept:
        return None
    return "These resources were kept due to the resource policy:\n" + "".join(
        f"[CustomResourceDefinition] {name}\n" for name in kept)


# ---------------------------------------------------------------------------------------------
# the operator's loop


def operate():
    """Catches the operator up with now: called at the start of every kubectl and helm call.
    Takes the state lock only when some Cluster has work due or something changed."""
    global _crds
    state = sim.read_state()
    _crds = {o["metadata"]["name"] for o in state["objects"].values() if o["kind"] == "CustomResourceDefinition"}
    if not _crds or not pass_needed(state):
        return
    with sim.locked_state() as state:
        sync_operator(state)
        running = operator_deployments(state) and not sim.faults() & {"cnpg-operator-down", "cnpg-operator-stuck"}
        clusters = [o for o in list(state["objects"].values()) if o["kind"] == "Cluster"]
        for cluster in clusters:
            runtime = cluster_runtime(state, cluster)
            if not running:
                runtime["due"] = None
                continue
            try:
                Reconciler(state, cluster, runtime).run()
            except Exception as error:  # noqa: BLE001 - a bug of the simulator, reported where an operator's would be
                report_error(state, cluster, error)
                runtime["due"] = time.time() + 1
        mark = fingerprint(state)
        for cluster in clusters:
            cluster_runtime(state, cluster)["fingerprint"] = mark


def report_error(state, cluster, error):
    """A failed reconcile: logged by the operator's pod as controller-runtime does, with the
    traceback in $PGK8S_SIM_DIR/operator.log; the cluster is tried again a second later."""
    import traceback
    with open(os.path.join(sim.sim_dir(), "operator.log"), "a") as log:
        log.write(f"{sim.now()} {cluster['metadata']['namespace']}/{cluster['metadata']['name']}\n"
                  + traceback.format_exc() + "\n")
    line = json.dumps({"level": "error", "ts": now_micro(), "msg": "Reconciler error", "controller": "cluster",
                       "controllerGroup": GROUP, "controllerKind": "Cluster",
                       "Cluster": {"name": cluster["metadata"]["name"], "namespace": cluster["metadata"]["namespace"]},
                       "error": str(error)})
    for deployment in operator_deployments(state):
        for pod in sim.objects_of(state, "Pod", deployment["metadata"]["namespace"]):
            if owned_by(pod, deployment["metadata"]["uid"]):
                runtime = state["runtime"].setdefault(sim.key("Pod", pod["metadata"]["namespace"],
                                                              pod["metadata"]["name"]), {"log_lines": []})
                runtime["log_lines"] = (runtime.get("log_lines") or [])[-200:] + [line]


def fingerprint(state):
    return [state.get("resource_version"), len(state["objects"]), sorted(sim.faults())]


def cluster_runtime(state, cluster):
    return state["runtime"].setdefault(f"cnpg/{cluster['metadata']['uid']}", {})


def pass_needed(state):
    mark = fingerprint(state)
    down = "cnpg-operator-down" in sim.faults()
    for deployment in operator_deployments(state):
        if bool(deployment.get("status", {}).get("availableReplicas")) == down:
            return True
    for obj in state["objects"].values():
        if obj["kind"] != "Cluster":
            continue
        runtime = state["runtime"].get(f"cnpg/{obj['metadata']['uid']}")
        if runtime is None or runtime.get("fingerprint") != mark:
            return True
        if runtime.get("due") is not None and runtime["due"] <= time.time():
            return True
    return False


class Reconciler:
    """One Cluster's reconciliation: steps as they come due (see the module's docstring)."""

    def __init__(self, state, cluster, runtime):
        self.state, self.c, self.rt = state, cluster, runtime
        self.ns, self.name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
        self.uid = cluster["metadata"]["uid"]

    # -- the loop ---------------------------------------------------------------------------

    def run(self):
        rt = self.rt
        if rt.get("observed") != self.c["metadata"]["resourceVersion"]:
            # A change of the Cluster: the operator's watch reacts at once.
            rt["clock"] = max(rt.get("clock", 0.0), time.time() - step_seconds())
        rt["due"] = None
        for _ in range(100):
            step = self.next_step()
            if step is None:
                break
            due = rt.get("clock", 0.0) + step_seconds()
            if time.time() < due:
                rt["due"] = due
                break
            step()
            rt["clock"] = due
            if getattr(step, "heavy", False):
                # One step that runs PostgreSQL per call: the next one waits for a later call.
                rt["clock"] = time.time()
                rt["due"] = rt["clock"] + step_seconds()
                break
        self.refresh_status()
        rt["observed"] = self.c["metadata"]["resourceVersion"]

    @property
    def spec(self):
        return self.c["spec"]

    @property
    def status(self):
        return self.c.setdefault("status", {})

    def save(self):
        sim.put(self.state, self.c)

    def next_step(self):
        """The next action the operator takes, or None when there is nothing to do now. Light
        bookkeeping (objects that must exist, conditions) happens here, outside the steps."""
        status = self.status
        if not status.get("targetPrimary"):
            return self.begin_bootstrap
        if status.get("phase") == UNRECOVERABLE:
            return None
        self.ensure_objects()
        self.settle_claims()
        self.refresh_pods()
        self.reconcile_users()
        hibernation = self.hibernation()
        if hibernation is not None:
            return hibernation or None
        if status.get("currentPrimary") and status["targetPrimary"] != status["currentPrimary"]:
            target = self.pod(status["targetPrimary"])
            target_rt = self.pod_rt(status["targetPrimary"])
            if target is None or not target_rt.get("port") or not sim.pod_ready(self.state, target):
                # cluster_status.go: a target that is not active goes back to the current primary.
                status["targetPrimary"] = status["currentPrimary"]
                status["targetPrimaryTimestamp"] = now_micro()
                self.save()
            else:
                return heavy(lambda: self.switchover())
        failed = [job for job in self.jobs() if self.job_failed(job)]
        if failed:
            names = ", ".join(job["metadata"]["name"] for job in failed)
            self.register_phase(UNRECOVERABLE, f"Instance creation failed for the following jobs: {names}. "
                                               "Check the job logs to investigate the cause of the failure.")
            return None
        running = [job for job in self.jobs() if not self.job_complete(job)]
        if running:
            job = running[0]
            if self.job_blocked(job):
                return None
            return heavy(lambda: self.run_job(job))
        names = self.instance_names()
        primary = status.get("currentPrimary") or status["targetPrimary"]
        missing = sorted((n for n in names if self.pod(n) is None), key=lambda n: (n != primary, serial(n)))
        if missing:
            if status.get("phase") in (HEALTHY, WAITING) and status.get("currentPrimary"):
                self.register_phase(WAITING, "Some instances are not yet active. Please wait.")
            if missing[0] != primary and not self.pod_rt(primary).get("port"):
                return None  # replicas wait for their primary
            return heavy(lambda: self.create_pod(missing[0]))
        rejoining = [n for n in names if self.pod_rt(n).get("rejoin")]
        if rejoining:
            return heavy(lambda: self.rejoin(rejoining[0]))
        if not status.get("currentPrimary"):
            return None
        wanted = int(self.spec.get("instances", 1))
        if len(names) < wanted:
            return self.begin_replica
        if len(names) > wanted:
            return heavy(lambda: self.scale_down())
        if status.get("phase") != HEALTHY and self.all_ready():
            return lambda: self.register_phase(HEALTHY)
        return None

    # -- status -----------------------------------------------------------------------------

    def register_phase(self, phase, reason=""):
        """RegisterPhase: the phase, its reason (none when healthy) and the Ready condition."""
        status = self.status
        before = copy.deepcopy(status)
        status["phase"] = phase
        if reason:
            status["phaseReason"] = reason
        else:
            status.pop("phaseReason", None)
        if phase == HEALTHY:
            set_condition(status, "Ready", "True", "ClusterIsReady", "Cluster is Ready")
        else:
            set_condition(status, "Ready", "False", "ClusterIsNotReady", "Cluster Is Not Ready")
        if status != before:
            self.save()

    def refresh_status(self):
        status = self.status
        if not status.get("targetPrimary"):
            return
        before = copy.deepcopy(status)
        names = self.instance_names()
        ready = [n for n in names if self.pod(n) is not None and sim.pod_ready(self.state, self.pod(n))]
        active = [n for n in names if self.pod(n) is not None and self.pod_rt(n).get("port") and n not in ready]
        status.update(instances=len(names), readyInstances=len(ready), instanceNames=names,
                      writeService=f"{self.name}-rw", readService=f"{self.name}-r",
                      selector=f"cnpg.io/cluster={self.name},cnpg.io/podRole=instance",
                      image=self.image(), pvcCount=len(names),
                      healthyPVC=[n for n in names if self.claim_ready(n)])
        status["instancesStatus"] = {key: value for key, value in (("healthy", ready), ("replicating", active))
                                     if value}
        reported = {}
        for name in names:
            pod = self.pod(name)
            if pod is not None and self.pod_rt(name).get("port"):
                reported[name] = {"isPrimary": name == status.get("currentPrimary"),
                                  "timeLineID": status.get("timelineID", 1), "ip": pod["status"].get("podIP")}
        status["instancesReportedState"] = reported
        if status != before:
            self.save()

    # -- objects ----------------------------------------------------------------------------

    def image(self):
        return self.spec.get("imageName") or DEFAULT_IMAGE

    def initdb(self):
        return (self.spec.get("bootstrap") or {}).get("initdb") or {}

    def database(self):
        return self.initdb().get("database") or "app"

    def owner(self):
        return self.initdb().get("owner") or self.database()

    def app_secret_name(self):
        return (self.initdb().get("secret") or {}).get("name") or f"{self.name}-app"

    def superuser_secret_name(self):
        return (self.spec.get("superuserSecret") or {}).get("name") or f"{self.name}-superuser"

    def labels(self, extra=None):
        return dict({"cnpg.io/cluster": self.name}, **(extra or {}))

    def put_owned(self, obj):
        obj["metadata"]["namespace"] = self.ns
        obj["metadata"]["ownerReferences"] = [owner_reference(self.c)]
        sim.put(self.state, obj)
        return obj

    def pod(self, name):
        return sim.get(self.state, "Pod", self.ns, name)

    def pod_rt(self, name):
        return self.state["runtime"].get(sim.key("Pod", self.ns, name), {})

    def instance_names(self):
        claims = [c["metadata"]["name"] for c in sim.objects_of(self.state, "PersistentVolumeClaim", self.ns)
                  if c["metadata"].get("labels", {}).get("cnpg.io/cluster") == self.name
                  and c["metadata"]["labels"].get("cnpg.io/pvcRole") == "PG_DATA"
                  and not c["metadata"].get("deletionTimestamp")]
        return sorted(claims, key=serial)

    def jobs(self):
        return [j for j in sim.objects_of(self.state, "Job", self.ns) if owned_by(j, self.uid)]

    def claim_ready(self, name):
        claim = sim.get(self.state, "PersistentVolumeClaim", self.ns, name)
        return bool(claim) and claim["metadata"].get("annotations", {}).get("cnpg.io/pvcStatus") == "ready"

    def ensure_objects(self):
        """Secrets, Services and PodDisruptionBudgets the cluster must have (created when
        missing, never rewritten: the operator only patches their labels)."""
        wanted = []
        if not (self.initdb().get("secret") or {}).get("name"):
            wanted.append(("app", self.app_secret_name(), self.owner(), self.database()))
        if self.spec.get("enableSuperuserAccess") and not (self.spec.get("superuserSecret") or {}).get("name"):
            wanted.append(("superuser", self.superuser_secret_name(), "postgres", "*"))
        else:
            made = sim.get(self.state, "Secret", self.ns, f"{self.name}-superuser")
            if made and owned_by(made, self.uid):
                sim.remove(self.state, "Secret", self.ns, f"{self.name}-superuser")
        for user_type, name, user, dbname in wanted:
            if sim.get(self.state, "Secret", self.ns, name) is None:
                self.put_owned(self.generated_secret(user_type, name, user, dbname))
        for suffix, selector in (("rw", {"cnpg.io/instanceRole": "primary"}),
                                 ("ro", {"cnpg.io/instanceRole": "replica"}),
                                 ("r", {"cnpg.io/podRole": "instance"})):
            if sim.get(self.state, "Service", self.ns, f"{self.name}-{suffix}") is None:
                self.put_owned({"kind": "Service", "metadata": {
                    "name": f"{self.name}-{suffix}", "labels": self.labels()},
                    "spec": {"type": "ClusterIP", "clusterIP": self.cluster_ip(suffix),
                             "ports": [{"name": "postgres", "port": 5432, "protocol": "TCP", "targetPort": 5432}],
                             "selector": self.labels(selector)}})
        pdbs = {}
        if self.spec.get("enablePDB", True):
            pdbs[f"{self.name}-primary"] = (1, "primary")
            instances = int(self.spec.get("instances", 1))
            if instances >= 3:
                pdbs[self.name] = (instances - 2, "replica")
        for pdb in sim.objects_of(self.state, "PodDisruptionBudget", self.ns):
            if owned_by(pdb, self.uid) and pdb["metadata"]["name"] not in pdbs:
                sim.remove(self.state, "PodDisruptionBudget", self.ns, pdb["metadata"]["name"])
        for name, (minimum, role) in pdbs.items():
            existing = sim.get(self.state, "PodDisruptionBudget", self.ns, name)
            if existing is None or existing["spec"]["minAvailable"] != minimum:
                self.put_owned({"kind": "PodDisruptionBudget", "metadata": {"name": name, "labels": self.labels()},
                                "spec": {"minAvailable": minimum, "selector": {"matchLabels": self.labels(
                                    {"cnpg.io/instanceRole": role})}}})

    def cluster_ip(self, suffix):
        digest = hashlib.sha256(f"{self.ns}/{self.name}-{suffix}".encode()).digest()
        return f"10.96.{digest[0]}.{digest[1] or 1}"

    def generated_secret(self, user_type, name, user, dbname):
        """pkg/specs/secrets.go CreateSecret: 64 random characters and the connection keys."""
        password = "".join(random.SystemRandom().choice(string.ascii_letters + string.digits) for _ in range(64))
        host, port = f"{self.name}-rw", "5432"
        fqdn = f"{host}.{self.ns}.svc.cluster.local"
        data = {"username": user, "user": user, "password": password, "dbname": dbname, "host": host,
                "port": port, "pgpass": f"{host}:{port}:{dbname}:{user}:{password}\n",
                "uri": f"postgresql://{user}:{password}@{host}.{self.ns}:{port}/{dbname}",
                "jdbc-uri": f"jdbc:postgresql://{host}.{self.ns}:{port}/{dbname}?password={password}&user={user}",
                "fqdn-uri": f"postgresql://{user}:{password}@{fqdn}:{port}/{dbname}",
                "fqdn-jdbc-uri": f"jdbc:postgresql://{fqdn}:{port}/{dbname}?password={password}&user={user}"}
        return {"kind": "Secret", "type": "kubernetes.io/basic-auth", "metadata": {
            "name": name, "labels": self.labels({"cnpg.io/userType": user_type, "cnpg.io/reload": "true",
                                                 "app.kubernetes.io/managed-by": "cloudnative-pg"})},
            "data": {k: encode(v) for k, v in data.items()}}

    def create_claim(self, name):
        storage = self.spec.get("storage") or {}
        spec = {"accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                "resources": {"requests": {"storage": storage.get("size", "1Gi")}},
                "storageClassName": storage.get("storageClass") or sim.default_storage_class(self.state)}
        claim = self.put_owned({"kind": "PersistentVolumeClaim", "metadata": {
            "name": name, "labels": self.labels({
                "cnpg.io/instanceName": name, "cnpg.io/pvcRole": "PG_DATA",
                "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/component": "database",
                "app.kubernetes.io/managed-by": "cloudnative-pg"}),
            "annotations": {"cnpg.io/nodeSerial": str(serial(name)), "cnpg.io/pvcStatus": "initializing"}},
            "spec": spec, "status": {"phase": "Pending"}})
        self.settle_claims()
        return claim

    def settle_claims(self):
        """The provisioner: a claim binds when its class exists (and no pvc-pending fault)."""
        for claim in sim.objects_of(self.state, "PersistentVolumeClaim", self.ns):
            if not owned_by(claim, self.uid) or claim.get("status", {}).get("phase") == "Bound":
                continue
            storage_class = claim["spec"].get("storageClassName")
            if "pvc-pending" in sim.faults() or sim.get(self.state, "StorageClass", None, storage_class) is None:
                runtime = self.state["runtime"].setdefault(
                    sim.key("PersistentVolumeClaim", self.ns, claim["metadata"]["name"]), {})
                if not runtime.get("provisioning_failed"):
                    runtime["provisioning_failed"] = True
                    sim.add_event(self.state, self.ns, "PersistentVolumeClaim", claim["metadata"]["name"],
                                  "ProvisioningFailed", f'storageclass.storage.k8s.io "{storage_class}" not found')
                continue
            self.state["runtime"].pop(sim.key("PersistentVolumeClaim", self.ns, claim["metadata"]["name"]), None)
            sim.bind_claim(self.state, claim)
            os.makedirs(sim.volume_dir(self.ns, claim["metadata"]["name"]), exist_ok=True)
            sim.chown_postgres(sim.volume_dir(self.ns, claim["metadata"]["name"]))
            sim.put(self.state, claim)

    def set_claim_status(self, name, value):
        claim = sim.get(self.state, "PersistentVolumeClaim", self.ns, name)
        if claim and claim["metadata"]["annotations"].get("cnpg.io/pvcStatus") != value:
            claim["metadata"]["annotations"]["cnpg.io/pvcStatus"] = value
            sim.put(self.state, claim)

    # -- jobs -------------------------------------------------------------------------------

    def create_job(self, instance, role):
        name = f"{instance}-{role}"
        job_labels = self.labels({"cnpg.io/jobRole": role, "cnpg.io/instanceName": instance,
                                  "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/component": "database",
                                  "app.kubernetes.io/managed-by": "cloudnative-pg"})
        command = ["/controller/manager", "instance", "init" if role in ("initdb", "import") else role]
        if role in ("initdb", "import"):
            command += ["--app-db-name", self.database(), "--app-user", self.owner()]
        pod_spec = {"restartPolicy": "Never", "hostname": name,
                    "initContainers": [{"name": "bootstrap-controller", "image": self.operator_image()}],
                    "containers": [{"name": role, "image": self.image(), "command": command,
                                    "resources": self.spec.get("resources") or {}}],
                    "volumes": [{"name": "pgdata", "persistentVolumeClaim": {"claimName": instance}}]}
        job = self.put_owned({"kind": "Job", "metadata": {"name": name, "labels": job_labels},
                              "spec": {"backoffLimit": IMPORT_BACKOFF_LIMIT if role == "import" else 6,
                                       "completions": 1, "parallelism": 1,
                                       "template": {"metadata": {"labels": job_labels}, "spec": pod_spec}},
                              "status": {"active": 1, "startTime": sim.now(), "ready": 0, "terminating": 0}})
        self.job_pod(job)
        return job

    def operator_image(self):
        deployments = operator_deployments(self.state)
        return deployments[0]["spec"]["template"]["spec"]["containers"][0]["image"] if deployments else ""

    def job_pods(self, job):
        return [p for p in sim.objects_of(self.state, "Pod", self.ns) if owned_by(p, job["metadata"]["uid"])]

    def job_pod(self, job):
        """The job's current pod, made when the previous attempt has finished."""
        live = [p for p in self.job_pods(job) if p["status"].get("phase") in ("Pending", "Running")]
        if live:
            return live[0]
        name = f"{job['metadata']['name']}-{random_suffix()}"
        template = job["spec"]["template"]
        labels = dict(template["metadata"]["labels"], **{
            "batch.kubernetes.io/job-name": job["metadata"]["name"], "job-name": job["metadata"]["name"],
            "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
            "controller-uid": job["metadata"]["uid"]})
        pod = {"kind": "Pod", "metadata": {"name": name, "namespace": self.ns, "labels": labels,
                                           "ownerReferences": [owner_reference(job)]},
               "spec": copy.deepcopy(template["spec"]), "status": {}}
        self.set_job_pod_status(pod, "Running")
        sim.put(self.state, pod)
        self.state["runtime"][sim.key("Pod", self.ns, name)] = {"log_lines": []}
        return pod

    def set_job_pod_status(self, pod, phase, waiting=None, unschedulable=None, exit_code=None):
        container = pod["spec"]["containers"][0]
        status = {"phase": phase, "conditions": [{"type": "PodScheduled", "status": "False" if unschedulable else "True"}]}
        if unschedulable:
            status["conditions"][0].update(reason="Unschedulable", message=unschedulable)
            pod["status"] = status
            return
        if waiting:
            state = {"waiting": waiting}
        elif phase == "Running":
            state = {"running": {"startedAt": sim.now()}}
        else:
            state = {"terminated": {"exitCode": exit_code or 0, "reason": "Completed" if not exit_code else "Error",
                                    "finishedAt": sim.now()}}
        status.update(podIP=self.pod_ip(), startTime=sim.now(), conditions=status["conditions"] + [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": "True" if phase == "Running" else "False"}],
            initContainerStatuses=[{"name": "bootstrap-controller", "ready": True, "restartCount": 0,
                                    "image": pod["spec"]["initContainers"][0]["image"],
                                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            containerStatuses=[{"name": container["name"], "image": container["image"], "restartCount": 0,
                                "ready": phase == "Running", "state": state}])
        pod["status"] = status

    def pod_ip(self):
        self.state["cnpg_ip"] = self.state.get("cnpg_ip", 10) + 1
        count = self.state["cnpg_ip"]
        return f"10.244.{count // 250}.{count % 250 + 2}"

    def job_complete(self, job):
        return any(c["type"] == "Complete" and c["status"] == "True" for c in job["status"].get("conditions", []))

    def job_failed(self, job):
        return any(c["type"] == "Failed" and c["status"] == "True" for c in job["status"].get("conditions", []))

    def job_blocked(self, job):
        """Whether the scheduler or the kubelet holds the job's pod back (a claim not bound, the
        unschedulable and image-pull-backoff faults); the pod and events say so once."""
        pod = self.job_pod(job)
        runtime = self.state["runtime"].setdefault(sim.key("Pod", self.ns, pod["metadata"]["name"]),
                                                   {"log_lines": []})
        instance = job["metadata"]["labels"]["cnpg.io/instanceName"]
        claim = sim.get(self.state, "PersistentVolumeClaim", self.ns, instance)
        active = sim.faults()
        image = pod["spec"]["containers"][0]["image"]
        if claim is None or claim.get("status", {}).get("phase") != "Bound":
            reason = ["FailedScheduling", "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. "
                      "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."]
        elif "unschedulable" in active:
            reason = ["FailedScheduling", "0/1 nodes are available: 1 Insufficient memory. preemption: 0/1 nodes "
                      "are available: 1 No preemption victims found for incoming pod."]
        elif "image-pull-backoff" in active:
            reason = ["Failed", f'Back-off pulling image "{image}"']
        else:
            reason = None
        if runtime.get("blocked") == reason:
            return reason is not None
        runtime["blocked"] = reason
        if reason is None:
            self.set_job_pod_status(pod, "Running")
        elif reason[0] == "Failed":
            self.set_job_pod_status(pod, "Pending", waiting={"reason": "ImagePullBackOff", "message": reason[1]})
            sim.add_event(self.state, self.ns, "Pod", pod["metadata"]["name"], "Failed",
                          f'Failed to pull image "{image}": rpc error: code = NotFound desc = failed to pull and '
                          f'unpack image "{image}": not found')
        else:
            self.set_job_pod_status(pod, "Pending", unschedulable=reason[1])
            sim.add_event(self.state, self.ns, "Pod", pod["metadata"]["name"], "FailedScheduling", reason[1])
        sim.put(self.state, pod)
        return reason is not None

    def run_job(self, job):
        """One attempt of a job's pod: initdb/import for the first instance, a clone for a replica."""
        pod = self.job_pod(job)
        pod_name = pod["metadata"]["name"]
        role = job["metadata"]["labels"]["cnpg.io/jobRole"]
        instance = job["metadata"]["labels"]["cnpg.io/instanceName"]
        self.job_pod_name = pod_name
        lines = [json_line(msg="Starting CloudNativePG Instance Manager", logging_pod=pod_name)]
        try:
            if role == "join":
                lines += self.clone(instance)
            else:
                lines += self.bootstrap(instance, role == "import")
        except JobFailed as failure:
            lines += [json_line(logger=line_logger(role), msg=line, pipe="stderr", logging_pod=pod_name)
                      for line in failure.lines]
            lines.append(json.dumps({"level": "error", "ts": now_micro(), "msg": "Error while bootstrapping data directory",
                                     "logging_pod": pod_name, "error": failure.error}))
            self.set_job_pod_status(pod, "Failed", exit_code=1)
            sim.put(self.state, pod)
            self.state["runtime"][sim.key("Pod", self.ns, pod_name)] = {"log_lines": lines}
            status = job["status"]
            status["failed"] = status.get("failed", 0) + 1
            if status["failed"] > job["spec"]["backoffLimit"]:
                status.pop("active", None)
                status["conditions"] = [
                    {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit", "lastTransitionTime": sim.now()},
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                     "message": "Job has reached the specified backoff limit", "lastTransitionTime": sim.now()}]
            else:
                self.job_pod(job)  # the next attempt
            sim.put(self.state, job)
            return
        lines.append(json_line(msg="Instance initialized" if role != "join" else "Backup of the primary cloned",
                               logging_pod=pod_name))
        self.set_job_pod_status(pod, "Succeeded", exit_code=0)
        sim.put(self.state, pod)
        self.state["runtime"][sim.key("Pod", self.ns, pod_name)] = {"log_lines": lines}
        job["status"] = {"succeeded": 1, "failed": job["status"].get("failed", 0), "ready": 0, "terminating": 0,
                         "startTime": job["status"].get("startTime"), "completionTime": sim.now(),
                         "conditions": [{"type": "SuccessCriteriaMet", "status": "True",
                                         "reason": "CompletionsReached",
                                         "message": "Reached expected number of succeeded pods"},
                                        {"type": "Complete", "status": "True", "reason": "CompletionsReached",
                                         "message": "Reached expected number of succeeded pods"}]}
        if not job["status"]["failed"]:
            job["status"].pop("failed")
        sim.put(self.state, job)
        self.set_claim_status(instance, "ready")

    def server(self):
        major, bindir = sim.pod_server(self.image())
        return major, bindir, sim.client_dirs(bindir)

    def bootstrap(self, instance, importing):
        """initdb (or import) into the instance's volume, with a temporary server."""
        major, bindir, dirs = self.server()
        volume = sim.volume_dir(self.ns, instance)
        data = os.path.join(volume, "data")
        sim.stop_server(volume, mode="immediate")
        shutil.rmtree(data, ignore_errors=True)  # initdb.go EnsureTargetDirectoriesDoNotExist
        subprocess.run(["cp", "-a", template(major, bindir), data], check=True)
        sim.chown_postgres(data)
        write_instance_config(data, self.c)
        sock = socket_dir(self.ns, instance)
        options = f"-k {shlex.quote(sock)}"
        if importing:
            options += " -c wal_level=minimal -c max_wal_senders=0 -c archive_mode=off"
        log = os.path.join(volume, "postgresql.log")
        with contextlib.suppress(OSError):
            os.remove(log)
        try:
            port = sim.start_server(volume, bindir, options)
        except sim.ServerFailed as failure:
            raise JobFailed(failure.lines)
        endpoint = (sock, port, dirs)
        owner, database = self.owner(), self.database()
        lines = []
        try:
            psql(endpoint, "CREATE ROLE streaming_replica REPLICATION LOGIN;\n"
                           f'CREATE ROLE "{owner}" LOGIN;\n'
                           f'CREATE DATABASE "{database}" OWNER "{owner}";\n')
            if importing:
                lines += self.logical_import(endpoint, volume, database, owner)
        finally:
            sim.stop_server(volume)
            server_lines = read_lines(log)
            with contextlib.suppress(OSError):
                os.remove(log)
        return records(server_lines, self.job_pod_name) + [
            json_line(logger="pg_restore" if line.startswith("pg_restore") else "pg_dump", msg=line,
                      pipe="stderr", logging_pod=self.job_pod_name) for line in lines]

    def logical_import(self, endpoint, volume, database, owner):
        """pkg/management/postgres/logicalimport: pg_dump of the source, pg_restore as the owner."""
        spec = self.initdb()["import"]
        if spec.get("type") != "microservice":
            raise JobFailed([f"pgk8s simulator: import type {spec.get('type')!r} is not simulated"])
        databases = spec.get("databases") or []
        source = (spec.get("source") or {}).get("externalCluster")
        external = next((e for e in self.spec.get("externalClusters") or [] if e.get("name") == source), None)
        if external is None or len(databases) != 1:
            raise JobFailed([f"missing external cluster {source!r} or not exactly one database"])
        params = {k: str(v) for k, v in (external.get("connectionParameters") or {}).items()}
        params["dbname"] = databases[0]
        host = params.get("host", "")
        address = self.resolve(host, int(params.get("port", "5432")))
        if address is None:
            raise JobFailed([f'pg_dump: error: could not translate host name "{host}" to address: '
                             "Name or service not known"])
        service_port = params.get("port", "5432")
        params["host"], params["port"] = address
        passfile_dir = os.path.join(volume, "external", external["name"])
        os.makedirs(passfile_dir, exist_ok=True)
        env = tool_env()
        selector = external.get("password")
        if selector:
            secret = sim.get(self.state, "Secret", self.ns, selector.get("name"))
            if secret is None:
                raise JobFailed([], error=f'secrets "{selector.get("name")}" not found')
            password = sim.secret_value(secret, selector.get("key"))
            if password is None:
                raise JobFailed([], error=f'missing key "{selector.get("key")}" in secret "{selector.get("name")}"')
            passfile = os.path.join(passfile_dir, "pgpass")
            with open(os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write("*:*:*:*:" + password.replace("\\", "\\\\").replace(":", "\\:") + "\n")
            env["PGPASSFILE"] = passfile
        dsn = " ".join(f"{k}={quote_conninfo(v)}" for k, v in params.items())
        sock, port, dirs = endpoint
        dumps = os.path.join(volume, "data", "dumps", databases[0])
        lines = []
        os.makedirs(os.path.dirname(dumps), exist_ok=True)
        try:
            dumped = subprocess.run([sim.find_tool(dirs, "pg_dump"), "-Fd", "-f", dumps, "-d", dsn, "-v"],
                                    capture_output=True, text=True, env=env)
            # What the pod would print: the Service's name, address and port, the pod's paths.
            lines += [line.replace(f'at "127.0.0.1", port {address[1]}',
                                   f'at "{host}" ({self.service_ip(host)}), port {service_port}')
                      .replace(passfile_dir, f"/controller/external/{external['name']}")
                      for line in dumped.stderr.splitlines()]
            if dumped.returncode != 0:
                raise JobFailed(lines)
            psql(endpoint, f'ALTER USER "{owner}" SUPERUSER')
            try:
                for section in ("pre-data", "data", "post-data"):
                    restored = subprocess.run(
                        [sim.find_tool(dirs, "pg_restore"), "-h", sock, "-p", str(port), "-U", "postgres",
                         "--no-owner", "--no-privileges", f"--role={owner}", "-d", database, "--section", section,
                         dumps], capture_output=True, text=True, env=tool_env())
                    lines += restored.stderr.splitlines()
                    if restored.returncode != 0:
                        raise JobFailed(lines)
            finally:
                psql(endpoint, f'ALTER USER "{owner}" NOSUPERUSER')
        finally:
            shutil.rmtree(os.path.join(volume, "data", "dumps"), ignore_errors=True)
            shutil.rmtree(os.path.join(volume, "external"), ignore_errors=True)
        for statement in spec.get("postImportApplicationSQL") or []:
            psql(endpoint, statement, database=database)
        psql(endpoint, "ANALYZE", database=database)
        return lines

    def resolve(self, host, port):
        """The cluster DNS for a Service: (127.0.0.1, the port of a ready pod it selects), a
        closed port when it selects none, None when there is no such Service."""
        parts = host.split(".")
        if not parts[0] or (len(parts) > 2 and parts[2:] not in (["svc"], ["svc", "cluster", "local"])):
            return None
        namespace = parts[1] if len(parts) > 1 else self.ns
        service = sim.get(self.state, "Service", namespace, parts[0])
        if service is None:
            return None
        if port in [p.get("port") for p in service["spec"].get("ports", [])]:
            for pod in sim.objects_of(self.state, "Pod", namespace):
                labels = pod["metadata"].get("labels", {})
                if all(labels.get(k) == v for k, v in (service["spec"].get("selector") or {}).items()) \
                        and sim.pod_ready(self.state, pod):
                    backend = self.state["runtime"].get(sim.key("Pod", namespace, pod["metadata"]["name"]), {})
                    if backend.get("port"):
                        return "127.0.0.1", str(backend["port"])
        return "127.0.0.1", str(sim.free_port())  # nothing behind it: connection refused

    def service_ip(self, host):
        parts = host.split(".")
        service = sim.get(self.state, "Service", parts[1] if len(parts) > 1 else self.ns, parts[0])
        return (service or {}).get("spec", {}).get("clusterIP") or "10.96.0.1"

    def clone(self, instance):
        """The join job: a base backup of the current primary through the instance's slot."""
        major, bindir, dirs = self.server()
        primary_rt = self.pod_rt(self.status["currentPrimary"])
        if not primary_rt.get("port"):
            raise JobFailed(["the primary is not running"])
        volume = sim.volume_dir(self.ns, instance)
        self.base_backup(primary_rt, instance, volume, dirs)
        return [json_line(logger="pg_basebackup", msg=f"cloned {self.status['currentPrimary']} into {instance}",
                          logging_pod=self.job_pod_name)]

    def base_backup(self, primary_rt, instance, volume, dirs):
        data = os.path.join(volume, "data")
        sim.stop_server(volume, mode="immediate")
        shutil.rmtree(data, ignore_errors=True)
        os.makedirs(volume, exist_ok=True)
        sim.chown_postgres(volume)
        slot = slot_name(instance)
        psql(endpoint_of(primary_rt), f"SELECT pg_create_physical_replication_slot({sim.sql_literal(slot)}, true) "
                                      f"WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = "
                                      f"{sim.sql_literal(slot)})")
        copied = subprocess.run(sim.as_postgres([
            sim.find_tool(dirs, "pg_basebackup"), "-D", data, "-X", "stream", "-S", slot, "-c", "fast",
            "-d", f"host=127.0.0.1 port={primary_rt['port']} user=streaming_replica"]),
            capture_output=True, text=True, env=tool_env())
        if copied.returncode != 0:
            raise JobFailed(copied.stderr.splitlines())
        write_instance_config(data, self.c)
        self.make_standby(data, instance, primary_rt)

    def make_standby(self, data, instance, primary_rt):
        write_file(os.path.join(data, "standby.signal"), "")
        set_auto_conf(data, {
            "primary_conninfo": f"host=127.0.0.1 port={primary_rt['port']} user=streaming_replica "
                                f"application_name={instance} sslmode=disable dbname=postgres",
            "primary_slot_name": slot_name(instance)})

    # -- instances --------------------------------------------------------------------------

    def create_pod(self, name):
        """An instance pod on its claim; its server starts (a standby unless it is the primary)."""
        status = self.status
        primary = status.get("currentPrimary") or status["targetPrimary"]
        role = "primary" if name == primary else "replica"
        pod = self.put_owned(self.pod_object(name))
        self.start(name, role, pod)
        if role == "primary" and not status.get("currentPrimary"):
            # The instance manager of the first primary reports itself.
            rt = self.pod_rt(name)
            status["currentPrimary"] = name
            status["currentPrimaryTimestamp"] = now_micro()
            if rt.get("port"):
                status["timelineID"] = timeline(endpoint_of(rt))
                status["systemID"] = psql(endpoint_of(rt), "SELECT system_identifier FROM pg_control_system()")
            self.save()
            self.reconcile_users()
        self.relabel()

    def pod_object(self, name):
        env = [{"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
               {"name": "POD_NAME", "value": name}, {"name": "NAMESPACE", "value": self.ns},
               {"name": "CLUSTER_NAME", "value": self.name}, {"name": "PSQL_HISTORY", "value": "/controller/tmp/.psql_history"},
               {"name": "PGPORT", "value": "5432"}, {"name": "PGHOST", "value": "/controller/run"},
               {"name": "TMPDIR", "value": "/controller/tmp"}]
        major = sim.image_major(self.image())
        labels = self.labels({"cnpg.io/instanceName": name, "cnpg.io/podRole": "instance",
                              "app.kubernetes.io/name": "postgresql", "app.kubernetes.io/instance": self.name,
                              "app.kubernetes.io/version": str(major), "app.kubernetes.io/component": "database",
                              "app.kubernetes.io/managed-by": "cloudnative-pg"})
        probe = {"httpGet": {"path": "/readyz", "port": 8000, "scheme": "HTTP"}, "periodSeconds": 10}
        container = {"name": "postgres", "image": self.image(), "command": ["/controller/manager", "instance", "run"],
                     "env": env, "resources": self.spec.get("resources") or {},
                     "ports": [{"containerPort": 5432, "name": "postgresql", "protocol": "TCP"},
                               {"containerPort": 9187, "name": "metrics", "protocol": "TCP"},
                               {"containerPort": 8000, "name": "status", "protocol": "TCP"}],
                     "readinessProbe": probe,
                     "livenessProbe": dict(probe, httpGet=dict(probe["httpGet"], path="/healthz")),
                     "startupProbe": dict(probe, httpGet=dict(probe["httpGet"], path="/startupz")),
                     "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql/data"},
                                      {"name": "scratch-data", "mountPath": "/run"},
                                      {"name": "scratch-data", "mountPath": "/controller"},
                                      {"name": "shm", "mountPath": "/dev/shm"}]}
        affinity = self.spec.get("affinity") or {}
        term = {"labelSelector": {"matchExpressions": [
            {"key": "cnpg.io/cluster", "operator": "In", "values": [self.name]},
            {"key": "cnpg.io/podRole", "operator": "In", "values": ["instance"]}]},
            "topologyKey": affinity.get("topologyKey", "kubernetes.io/hostname")}
        anti = ({"requiredDuringSchedulingIgnoredDuringExecution": [term]}
                if affinity.get("podAntiAffinityType") == "required" else
                {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]})
        spec = {"hostname": name, "containers": [container],
                "initContainers": [{"name": "bootstrap-controller", "image": self.operator_image()}],
                "securityContext": {"runAsUser": self.spec.get("postgresUID", 26),
                                    "runAsGroup": self.spec.get("postgresGID", 26),
                                    "fsGroup": self.spec.get("postgresGID", 26), "runAsNonRoot": True},
                "volumes": [{"name": "pgdata", "persistentVolumeClaim": {"claimName": name}},
                            {"name": "scratch-data", "emptyDir": {}},
                            {"name": "shm", "emptyDir": {"medium": "Memory"}}]}
        if affinity.get("enablePodAntiAffinity", True) is not False:
            spec["affinity"] = {"podAntiAffinity": anti}
        return {"kind": "Pod", "metadata": {"name": name, "labels": labels,
                                            "annotations": {"cnpg.io/nodeSerial": str(serial(name))}},
                "spec": spec, "status": {"phase": "Pending", "conditions": []}}

    def start(self, name, role, pod=None):
        """Starts an instance's server: a standby points at the current primary first; a primary
        that comes up on a new port has its standbys pointed at it."""
        pod = pod or self.pod(name)
        major, bindir, dirs = self.server()
        volume = sim.volume_dir(self.ns, name)
        data = os.path.join(volume, "data")
        sock = socket_dir(self.ns, name)
        if role == "replica":
            primary_rt = self.pod_rt(self.status["currentPrimary"])
            self.make_standby(data, name, primary_rt)
        sim.stop_server(volume)
        runtime = {"volume": volume, "major": major, "image_major": sim.image_major(self.image()), "bindir": bindir,
                   "client_dirs": dirs, "sock": sock, "cnpg": self.name, "log_format": "cnpg",
                   "paths": {"/controller/run": sock, "/var/lib/postgresql/data/pgdata": data}}
        self.state["runtime"][sim.key("Pod", self.ns, name)] = runtime
        try:
            runtime["port"] = sim.start_server(volume, bindir, f"-k {shlex.quote(sock)}")
        except sim.ServerFailed as failure:
            runtime["crash_log"] = failure.lines
            runtime["crash_since"] = time.time()
            runtime["crash_at"] = sim.now()
            self.set_pod_status(pod, ready=False, waiting={
                "reason": "CrashLoopBackOff", "message": "back-off 10s restarting failed container=postgres "
                                                         f"pod={name}_{self.ns}({pod['metadata'].get('uid', '')})"})
            sim.put(self.state, pod)
            return
        runtime["env"] = {"PGHOST": sock, "PGPORT": str(runtime["port"]), "PGDATA": data, "POD_NAME": name,
                          "NAMESPACE": self.ns, "CLUSTER_NAME": self.name}
        if role == "primary":
            self.repoint_standbys(name)
        else:
            wait_streaming(endpoint_of(self.pod_rt(self.status["currentPrimary"])), [name])
        self.set_pod_status(pod, ready="pod-never-ready" not in sim.faults())
        sim.put(self.state, pod)

    def repoint_standbys(self, primary):
        """Running standbys follow the primary where it now listens (the -rw service)."""
        primary_rt = self.pod_rt(primary)
        for name in self.instance_names():
            rt = self.pod_rt(name)
            if name == primary or not rt.get("port") or rt.get("rejoin"):
                continue
            data = rt["paths"]["/var/lib/postgresql/data/pgdata"]
            self.make_standby(data, name, primary_rt)
            psql(endpoint_of(rt), "SELECT pg_reload_conf()", check=False)

    def set_pod_status(self, pod, ready, waiting=None):
        if not pod["status"].get("podIP"):
            pod["status"]["podIP"] = self.pod_ip()
        ip = pod["status"]["podIP"]
        flag = "True" if ready else "False"
        state = {"waiting": waiting} if waiting else {"running": {"startedAt": sim.now()}}
        pod["status"] = {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "172.18.0.2",
            "startTime": pod["status"].get("startTime") or sim.now(), "qosClass": "BestEffort",
            "conditions": [{"type": "PodReadyToStartContainers", "status": "True"},
                           {"type": "Initialized", "status": "True"}, {"type": "Ready", "status": flag},
                           {"type": "ContainersReady", "status": flag}, {"type": "PodScheduled", "status": "True"}],
            "initContainerStatuses": [{"name": "bootstrap-controller", "ready": True, "restartCount": 0,
                                       "image": self.operator_image(),
                                       "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}],
            "containerStatuses": [{"name": "postgres", "image": pod["spec"]["containers"][0]["image"],
                                   "ready": ready, "started": not waiting, "restartCount": 0, "state": state}]}

    def refresh_pods(self):
        """Readiness follows the pod-never-ready fault and whether the server runs."""
        for name in self.instance_names():
            pod, rt = self.pod(name), self.pod_rt(name)
            if pod is None or rt.get("crash_log"):
                continue
            ready = bool(rt.get("port")) and "pod-never-ready" not in sim.faults()
            current = next((c["status"] == "True" for c in pod["status"].get("conditions", []) if c["type"] == "Ready"),
                           None)
            if current != ready:
                self.set_pod_status(pod, ready)
                sim.put(self.state, pod)

    def relabel(self):
        """metadata.go: instanceRole and the deprecated `role` on pods and claims."""
        primary = self.status.get("currentPrimary")
        if not primary:
            return
        for name in self.instance_names():
            role = "primary" if name == primary else "replica"
            for obj in (self.pod(name), sim.get(self.state, "PersistentVolumeClaim", self.ns, name)):
                if obj is None:
                    continue
                labels = obj["metadata"].setdefault("labels", {})
                if labels.get("cnpg.io/instanceRole") != role or labels.get("role") != role:
                    labels.update({"cnpg.io/instanceRole": role, "role": role})
                    sim.put(self.state, obj)

    def reconcile_users(self):
        """The primary's instance manager: passwords from the Secrets (instance_controller.go
        refreshCredentialsFromSecret), applied once per Secret resourceVersion."""
        primary = self.status.get("currentPrimary")
        rt = self.pod_rt(primary) if primary else {}
        if not rt.get("port"):
            return
        applied = rt.setdefault("secret_versions", {})
        if self.spec.get("enableSuperuserAccess"):
            self.reconcile_user(rt, applied, "postgres", self.superuser_secret_name())
        elif applied.get("postgres") != "disabled":
            psql(endpoint_of(rt), "ALTER ROLE postgres WITH PASSWORD NULL")
            applied["postgres"] = "disabled"
            applied.pop(self.superuser_secret_name(), None)
        if self.initdb().get("database") or self.initdb().get("owner"):
            self.reconcile_user(rt, applied, self.owner(), self.app_secret_name())

    def reconcile_user(self, rt, applied, username, secret_name):
        secret = sim.get(self.state, "Secret", self.ns, secret_name)
        if secret is None:
            return
        version = secret["metadata"].get("resourceVersion")
        if applied.get(secret_name) == version:
            return
        if username == "postgres":
            applied.pop("postgres", None)
        given, password = sim.secret_value(secret, "username"), sim.secret_value(secret, "password")
        error = None
        if given is None or password is None:
            error = f"missing key in secret {secret_name}"
        elif given != username:
            error = f"wrong username '{given}' in secret, expected '{username}'"
        if error:
            if rt.get("logged_error") != [secret_name, version]:
                rt["logged_error"] = [secret_name, version]
                with open(os.path.join(rt["volume"], "postgresql.log"), "a") as log:
                    log.write(json.dumps({
                        "level": "error", "ts": now_micro(), "msg": "Reconciler error", "controller": "instance-cluster",
                        "controllerGroup": GROUP, "controllerKind": "Cluster",
                        "Cluster": {"name": self.name, "namespace": self.ns}, "namespace": self.ns,
                        "name": self.name, "logging_pod": self.status["currentPrimary"],
                        "error": f"while updating database owner password: {error}"}) + "\n")
            return
        psql(endpoint_of(rt), f'ALTER ROLE "{username}" WITH PASSWORD {sim.sql_literal(password)}')
        applied[secret_name] = version

    def all_ready(self):
        names = self.instance_names()
        if len(names) != int(self.spec.get("instances", 1)):
            return False
        for name in names:
            pod, rt = self.pod(name), self.pod_rt(name)
            if pod is None or not rt.get("port") or rt.get("rejoin") or not sim.pod_ready(self.state, pod):
                return False
        primary = self.pod_rt(self.status["currentPrimary"])
        replicas = [n for n in names if n != self.status["currentPrimary"]]
        return not replicas or wait_streaming(endpoint_of(primary), replicas, seconds=2)

    # -- steps ------------------------------------------------------------------------------

    def begin_bootstrap(self):
        first = f"{self.name}-1"
        status = self.status
        status.update(targetPrimary=first, targetPrimaryTimestamp=now_micro(), latestGeneratedNode=1,
                      image=self.image())
        self.register_phase(SETTING_UP, f"Creating primary instance {first}")
        self.save()
        self.ensure_objects()
        self.create_claim(first)
        self.create_job(first, "import" if self.initdb().get("import") else "initdb")

    def begin_replica(self):
        used = {serial(n) for n in self.instance_names()}
        number = next(n for n in range(1, len(used) + 2) if n not in used)
        name = f"{self.name}-{number}"
        self.status["latestGeneratedNode"] = max(self.status.get("latestGeneratedNode", 0), number)
        self.register_phase(NEW_REPLICA, f"Creating replica {name}-join")
        self.save()
        sim.remove(self.state, "Job", self.ns, f"{name}-join")
        self.create_claim(name)
        self.create_job(name, "join")

    def scale_down(self):
        """The highest serial replica goes, with its claim."""
        names = [n for n in self.instance_names() if n != self.status.get("currentPrimary")]
        name = max(names, key=serial)
        if self.pod(name) is not None:
            sim.delete_pod(self.state, self.ns, name)
        for job in self.jobs():
            if job["metadata"]["labels"].get("cnpg.io/instanceName") == name:
                self.delete_job(job)
        sim.delete_claim(self.state, self.ns, name)
        primary = self.pod_rt(self.status["currentPrimary"])
        if primary.get("port"):
            psql(endpoint_of(primary), f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                                       f"WHERE slot_name = {sim.sql_literal(slot_name(name))} AND NOT active",
                 check=False)

    def delete_job(self, job):
        for pod in self.job_pods(job):
            self.state["runtime"].pop(sim.key("Pod", self.ns, pod["metadata"]["name"]), None)
            sim.remove(self.state, "Pod", self.ns, pod["metadata"]["name"])
        sim.remove(self.state, "Job", self.ns, job["metadata"]["name"])

    def switchover(self):
        """The old primary's instance manager: CHECKPOINT and a fast shutdown once the target has
        everything; the target's: promote, then report itself as currentPrimary."""
        old, new = self.status["currentPrimary"], self.status["targetPrimary"]
        old_rt, new_rt = self.pod_rt(old), self.pod_rt(new)
        if old_rt.get("port"):
            old_end = endpoint_of(old_rt)
            deadline = time.time() + 10
            while time.time() < deadline and psql(old_end, (
                    "SELECT coalesce(bool_and(replay_lsn >= pg_current_wal_lsn()), false) FROM pg_stat_replication "
                    f"WHERE application_name = {sim.sql_literal(new)}"), check=False) != "t":
                time.sleep(0.05)
            psql(old_end, "CHECKPOINT", check=False)
            sim.stop_server(old_rt["volume"], mode="fast")
        old_rt.pop("port", None)
        old_rt.pop("env", None)
        old_rt["rejoin"] = True
        old_pod = self.pod(old)
        if old_pod is not None:
            self.set_pod_status(old_pod, ready=False)
            sim.put(self.state, old_pod)
        data = new_rt["paths"]["/var/lib/postgresql/data/pgdata"]
        subprocess.run(sim.as_postgres([os.path.join(new_rt["bindir"], "pg_ctl"), "-D", data, "-w", "-t", "60",
                                        "promote"]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        set_auto_conf(data, {"primary_conninfo": None, "primary_slot_name": None})
        new_end = endpoint_of(new_rt)
        for name in self.instance_names():
            if name != new:
                slot = sim.sql_literal(slot_name(name))
                psql(new_end, f"SELECT pg_create_physical_replication_slot({slot}, true) WHERE NOT EXISTS "
                              f"(SELECT 1 FROM pg_replication_slots WHERE slot_name = {slot})")
        self.status.update(currentPrimary=new, currentPrimaryTimestamp=now_micro(), timelineID=timeline(new_end))
        self.save()
        self.repoint_standbys(new)
        self.relabel()

    def rejoin(self, name):
        """The old primary comes back as a replica of the new one (cloned afresh)."""
        primary_rt = self.pod_rt(self.status["currentPrimary"])
        rt = self.pod_rt(name)
        self.base_backup(primary_rt, name, rt["volume"], rt["client_dirs"])
        rt.pop("rejoin", None)
        self.start(name, "replica")
        self.relabel()

    def hibernation(self):
        """pkg/reconciler/hibernation. None: go on with the reconciliation; a step: delete the
        next pod; False: stop here (hibernated)."""
        status = self.status
        annotation = (self.c["metadata"].get("annotations") or {}).get(HIBERNATION)
        condition = find_condition(status, HIBERNATION)
        before = copy.deepcopy(status)
        if annotation != "on":
            if condition:
                remove_condition(status, HIBERNATION)
                self.save()
            return None
        ongoing = condition and condition["reason"] in ("DeletingPods", "WaitingPodsDeletion", "Hibernated")
        if status.get("phase") != HEALTHY and not ongoing:
            set_condition(status, HIBERNATION, "False", "WaitingForHealthy",
                          "Waiting for the cluster to be healthy before proceeding with hibernation")
            if status != before:
                self.save()
            return None
        pods = [n for n in self.instance_names() if self.pod(n) is not None]
        if not pods:
            set_condition(status, HIBERNATION, "True", "Hibernated", "Cluster has been hibernated")
            if status != before:
                self.save()
            return False
        set_condition(status, HIBERNATION, "False", "DeletingPods", "Hibernation is in progress")
        if status != before:
            self.save()
        primary = status.get("currentPrimary")
        victim = primary if primary in pods else pods[0]
        return heavy(lambda: sim.delete_pod(self.state, self.ns, victim))


# ---------------------------------------------------------------------------------------------
# other calls into the operator's objects


def delete_cluster(state, namespace, name):
    """`kubectl delete cluster/<c>`: the Cluster, then what it owns (the garbage collector)."""
    cluster = sim.remove(state, "Cluster", namespace, name)
    if cluster is None:
        return
    collect(state, namespace, cluster["metadata"]["uid"])
    state["runtime"].pop(f"cnpg/{cluster['metadata']['uid']}", None)


def collect(state, namespace, uid):
    owned = [o for o in list(state["objects"].values())
             if o["metadata"].get("namespace") == namespace and owned_by(o, uid)]
    order = {"Pod": 0, "Job": 1, "PersistentVolumeClaim": 2}
    for obj in sorted(owned, key=lambda o: order.get(o["kind"], 3)):
        name = obj["metadata"]["name"]
        if obj["kind"] == "Pod":
            runtime = state["runtime"].pop(sim.key("Pod", namespace, name), {})
            if runtime.get("volume"):
                sim.stop_server(runtime["volume"])
            if runtime.get("sock"):
                shutil.rmtree(runtime["sock"], ignore_errors=True)
            sim.remove(state, "Pod", namespace, name)
        elif obj["kind"] == "PersistentVolumeClaim":
            sim.delete_claim(state, namespace, name)
        else:
            collect(state, namespace, obj["metadata"]["uid"])
            sim.remove(state, obj["kind"], namespace, name)


def restart_instance(state, namespace, pod):
    """`pgk8s-sim restart NS POD` of an instance: its server restarts (on a new port)."""
    cluster = sim.get(state, "Cluster", namespace, state["runtime"][sim.key("Pod", namespace, pod)]["cnpg"])
    reconciler = Reconciler(state, cluster, cluster_runtime(state, cluster))
    reconciler.start(pod, "primary" if cluster["status"].get("currentPrimary") == pod else "replica")


def log_target(state, namespace, target):
    """`kubectl logs job/NAME` reads a pod of the job (kubectl says which when there are more)."""
    kind, _, name = target.partition("/")
    if not name:
        return target
    if sim.KINDS.get(kind) == "Pod":
        return name
    if sim.KINDS.get(kind) == "Job":
        pods = sorted((p for p in sim.objects_of(state, "Pod", namespace)
                       if p["metadata"].get("labels", {}).get("job-name") == name),
                      key=lambda p: (p["metadata"].get("creationTimestamp", ""), int(p["metadata"].get("resourceVersion", 0))))
        if not pods:
            sim.die(f'error: timed out waiting for the condition')
        if len(pods) > 1:
            sys.stderr.write(f"Found {len(pods)} pods, using pod/{pods[0]['metadata']['name']}\n")
        return pods[0]["metadata"]["name"]
    return target


RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?: \S+)?) \[(\d+)\] (\w+):  (.*)$")


def log_lines(runtime, lines):
    """An instance's log as its instance manager prints it: JSON lines, PostgreSQL's records
    under logger `postgres` (other pods' logs unchanged)."""
    if runtime.get("log_format") != "cnpg":
        return lines
    return records(lines, runtime.get("env", {}).get("POD_NAME") or runtime.get("cnpg", ""))


def records(lines, pod):
    shown = []
    for line in lines:
        if line.startswith("{"):
            shown.append(line)
            continue
        found = RECORD.match(line)
        if found:
            stamp, pid, severity, message = found.groups()
            shown.append(json.dumps({"level": "info", "ts": record_time(stamp), "logger": "postgres", "msg": "record",
                                     "logging_pod": pod, "record": {
                                         "log_time": stamp, "process_id": pid, "error_severity": severity,
                                         "message": message}}))
        else:
            shown.append(json.dumps({"level": "info", "ts": now_micro(), "logger": "postgres", "msg": line,
                                     "pipe": "stderr", "logging_pod": pod}))
    return shown


def record_time(stamp):
    """A server log time (`2026-12-02 17:25:24.252 UTC`) as the instance manager's ts."""
    found = re.match(r"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)?", stamp)
    if not found:
        return now_micro()
    return f"{found.group(1)}T{found.group(2)}{(found.group(3) or '.0').ljust(7, '0')[:7]}Z"


def print_clusters(clusters):
    """`kubectl get cluster`: the CRD's printer columns."""
    rows = [("NAME", "AGE", "INSTANCES", "READY", "STATUS", "PRIMARY")]
    for cluster in clusters:
        status = cluster.get("status", {})
        rows.append((cluster["metadata"]["name"], sim.age(cluster["metadata"].get("creationTimestamp")),
                     str(status.get("instances", "")), str(status.get("readyInstances", "")),
                     status.get("phase", ""), status.get("currentPrimary", "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("   ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


# ---------------------------------------------------------------------------------------------


def line_logger(role):
    return "pg_basebackup" if role == "join" else "pg_dump"


def quote_conninfo(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def read_lines(path):
    try:
        with open(path, errors="replace") as handle:
            return handle.read().splitlines()
    except OSError:
        return []

