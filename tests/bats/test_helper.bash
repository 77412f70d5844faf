# Shared setup for the black-box Bats suite: every test gets its own simulated cluster
# (tests/sim/pgk8s_sim.py linked as kubectl, helm and pgk8s-sim, first on PATH) and runs the
# built pgk8s binary against it, the way a user would.
#
# Run from the repository root:  bats tests/bats
# Use another binary with:       PGK8S_BIN=/path/to/pgk8s bats tests/bats

bats_require_minimum_version 1.5.0

REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
SIMULATOR="$REPO/tests/sim/pgk8s_sim.py"
PGK8S="${PGK8S_BIN:-$REPO/target/debug/pgk8s}"

# Builds the binary once per file when it is missing (only for the default location).
setup_file() {
    if [[ ! -x "$PGK8S" ]]; then
        if [[ -n "${PGK8S_BIN:-}" ]]; then
            echo "PGK8S_BIN=$PGK8S_BIN is not an executable file" >&3
            return 1
        fi
        (cd "$REPO" && cargo build --quiet) >&3 2>&1 || {
            echo "cannot build pgk8s: run \`cargo build\` in $REPO" >&3
            return 1
        }
        [[ -x "$PGK8S" ]] || {
            echo "cargo build did not produce $PGK8S" >&3
            return 1
        }
    fi
    local bindir
    bindir="$(pg_config --bindir 2>/dev/null || true)"
    if [[ ! -x "$bindir/initdb" ]] && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
        echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&3
        return 1
    fi
}

# A fresh simulated cluster for one test. Files with their own setup() call this first.
sim_setup() {
    # Nothing from the caller's environment may steer pgk8s or the simulator.
    local name
    for name in $(compgen -e | grep '^PGK8S_' || true); do
        [[ "$name" == PGK8S_BIN ]] || unset "$name"
    done
    TEST_TMP="$(mktemp -d "${TMPDIR:-/tmp}/pgk8s-bats-XXXXXX")"
    chmod 755 "$TEST_TMP" # the simulated postgres runs as user postgres
    mkdir "$TEST_TMP/bin"
    for name in kubectl helm pgk8s-sim; do
        ln -s "$SIMULATOR" "$TEST_TMP/bin/$name"
    done
    export PATH="$TEST_TMP/bin:$PATH"
    export PGK8S_SIM_DIR="$TEST_TMP/state"
    export PGK8S_SIM_CACHE="${TMPDIR:-/tmp}/pgk8s-sim-cache"
    export NO_COLOR=1
    mkdir -p "$PGK8S_SIM_CACHE"
}

setup() {
    sim_setup
}

# Stops the test's PostgreSQL servers and removes its directory.
sim_teardown() {
    if [[ -n "${TEST_TMP:-}" && -d "$TEST_TMP" ]]; then
        if [[ -f "$PGK8S_SIM_DIR/state.json" ]]; then
            PGK8S_FAKE_FAULTS= pgk8s-sim teardown || true
        fi
        rm -rf "$TEST_TMP"
    fi
}

teardown() {
    sim_teardown
}

# The binary under test.
pgk8s() {
    "$PGK8S" "$@"
}

# A deploy that must succeed (the usual starting point of a test).
deploy_ok() {
    run --separate-stderr pgk8s deploy --timeout 60s "$@"
    assert_status 0
}

# Prints the last run's command result and fails.
_fail() {
    {
        echo "$*"
        echo "--- status: ${status:-}"
        echo "--- stdout:"
        echo "${output:-}"
        echo "--- stderr:"
        echo "${stderr:-}"
    } >&2
    return 1
}

# assert_status N: the last `run` exited with N.
assert_status() {
    [[ "$status" -eq "$1" ]] || _fail "expected exit $1, got $status"
}

# assert_contains HAYSTACK NEEDLE
assert_contains() {
    [[ "$1" == *"$2"* ]] || {
        printf 'expected to find: %s\nin:\n%s\n' "$2" "$1" >&2
        return 1
    }
}

# assert_not_contains HAYSTACK NEEDLE
assert_not_contains() {
    [[ "$1" != *"$2"* ]] || {
        printf 'did not expect to find: %s\nin:\n%s\n' "$2" "$1" >&2
        return 1
    }
}

# assert_equal ACTUAL EXPECTED
assert_equal() {
    [[ "$1" == "$2" ]] || {
        printf 'expected: %s\nactual:   %s\n' "$2" "$1" >&2
        return 1
    }
}

# json_get JSON PATH: the value at a jq-like path (.a.b[0].c, or . for the whole document).
# Strings print raw, null/true/false as such, arrays and objects as compact JSON.
# Fails (status 2) when JSON is not exactly one JSON document.
json_get() {
    python3 - "$1" "$2" <<'EOF'
import json, re, sys
try:
    value = json.loads(sys.argv[1])
except ValueError as error:
    sys.stderr.write(f"not one JSON document ({error}):\n{sys.argv[1]}\n")
    sys.exit(2)
for part in re.findall(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]", sys.argv[2]):
    name, index = part
    try:
        value = value[name] if name else value[int(index)]
    except (KeyError, IndexError, TypeError):
        value = None
        break
if isinstance(value, str):
    print(value)
else:
    print(json.dumps(value, separators=(",", ":"), sort_keys=True))
EOF
}

# json_len JSON PATH: length of the array or object at PATH.
json_len() {
    python3 - "$1" "$2" <<'EOF'
import json, re, sys
value = json.loads(sys.argv[1])
for name, index in re.findall(r"\.([A-Za-z_][A-Za-z0-9_-]*)|\[(-?\d+)\]", sys.argv[2]):
    value = value[name] if name else value[int(index)]
print(len(value))
EOF
}

# assert_json_doc TEXT: TEXT is exactly one JSON document.
assert_json_doc() {
    json_get "$1" . >/dev/null || _fail "stdout is not one JSON document"
}

# issue_codes JSON: the `code` of every entry of .issues, comma separated.
issue_codes() {
    python3 -c 'import json,sys; print(",".join(i["code"] for i in json.loads(sys.argv[1])["issues"]))' "$1"
}

# sim_sql NS POD DB SQL: runs SQL as the superuser inside the simulated pod (fake kubectl exec,
# real password file) and prints psql's unaligned output.
sim_sql() {
    local script='PGPASSWORD="$(cat /opt/bitnami/postgresql/secrets/postgres-password)" exec psql -X -q -At -v ON_ERROR_STOP=1 -U postgres -d "$0" -f -'
    printf '%s\n' "$4" | kubectl exec -i "$2" -c postgresql -n "$1" -- sh -c "$script" "$3"
}

# The recorded calls of the fake tools, one "tool argv..." line each (records with phase start).
calls() {
    [[ -f "$PGK8S_SIM_DIR/calls.jsonl" ]] || return 0
    python3 - "$PGK8S_SIM_DIR/calls.jsonl" <<'EOF'
import json, shlex, sys
for line in open(sys.argv[1]):
    record = json.loads(line)
    if record.get("phase") == "start":
        print(" ".join([record["tool"]] + [shlex.quote(arg) for arg in record["argv"]]))
EOF
}

# count_calls TOOL VERB: how many calls of `TOOL VERB ...` were recorded.
count_calls() {
    [[ -f "$PGK8S_SIM_DIR/calls.jsonl" ]] || { echo 0; return; }
    python3 - "$PGK8S_SIM_DIR/calls.jsonl" "$1" "$2" <<'EOF'
import json, sys
path, tool, verb = sys.argv[1:]
count = 0
for line in open(path):
    record = json.loads(line)
    if record.get("phase") == "start" and record["tool"] == tool \
            and (record["argv"] or [""])[0] == verb:
        count += 1
print(count)
EOF
}

# Calls that change cluster state (read-only psql sessions excepted), one per line.
mutating_calls() {
    [[ -f "$PGK8S_SIM_DIR/calls.jsonl" ]] || return 0
    python3 - "$PGK8S_SIM_DIR/calls.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    record = json.loads(line)
    if record.get("phase") != "start":
        continue
    tool, argv = record["tool"], record["argv"]
    verb = argv[0] if argv else ""
    if tool == "kubectl" and verb == "exec":
        mutating = not any("default_transaction_read_only=on" in arg for arg in argv)
    elif tool == "kubectl":
        mutating = verb in ("apply", "delete", "create", "patch", "label", "annotate")
    else:
        mutating = verb in ("upgrade", "install", "uninstall", "rollback")
    if mutating:
        print(tool, " ".join(argv))
EOF
}

# Forgets the calls recorded so far.
clear_calls() {
    rm -f "$PGK8S_SIM_DIR/calls.jsonl"
}

# secret_value NAME KEY [NS]: a decoded value of a Secret, read back through the fake kubectl.
secret_value() {
    kubectl get "secret/$1" -n "${3:-learnflow}" -o json |
        python3 -c 'import base64,json,sys; print(base64.b64decode(json.load(sys.stdin)["data"][sys.argv[1]]).decode())' "$2"
}

# secret_manifest NAME NS SUPERUSER_PASSWORD APP_PASSWORD: a Secret as JSON for `kubectl apply -f -`.
secret_manifest() {
    python3 - "$@" <<'EOF'
import base64, json, sys
name, namespace, superuser, app = sys.argv[1:]
encode = lambda value: base64.b64encode(value.encode()).decode()
print(json.dumps({"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": name, "namespace": namespace},
                  "data": {"postgres-password": encode(superuser), "password": encode(app)}}))
EOF
}
