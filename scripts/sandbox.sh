#!/usr/bin/env bash
# A sandbox to try pgk8s without a Kubernetes cluster: the simulated cluster the tests use
# (tests/sim/pgk8s_sim.py: fake kubectl and helm, with a real PostgreSQL server behind every pod).
#
#   scripts/sandbox.sh demo   build pgk8s, start the sandbox, and run the main job in it:
#                             deploy (with migrations), seed, verify, migrate status, status
#   scripts/sandbox.sh up     start an empty sandbox (prerequisites installed if missing)
#   scripts/sandbox.sh env    print the exports that point pgk8s at it:
#                             eval "$(scripts/sandbox.sh env)"
#   scripts/sandbox.sh down   stop every PostgreSQL server it started and remove it
#
# State lives in ${PGK8S_SANDBOX_DIR:-${TMPDIR:-/tmp}/pgk8s-sandbox-$UID} (under the system temp
# directory because the postgres user that runs the servers must be able to reach it).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dir="${PGK8S_SANDBOX_DIR:-${TMPDIR:-/tmp}/pgk8s-sandbox-$(id -u)}"
cache="${TMPDIR:-/tmp}/pgk8s-sim-cache"
binary="$repo/target/release/pgk8s"

say() { echo "sandbox: $*" >&2; }

print_env() {
  echo "export PATH=$dir/bin:$repo/target/release:\$PATH"
  echo "export PGK8S_SIM_DIR=$dir/state"
  echo "export PGK8S_SIM_CACHE=$cache"
  echo "export PGK8S_SANDBOX=$dir"
}

up() {
  bash "$repo/scripts/prerequisites.sh"
  mkdir -p "$dir/bin" "$dir/state"
  chmod 755 "$dir"
  for tool in kubectl helm pgk8s-sim; do
    ln -sfn "$repo/tests/sim/pgk8s_sim.py" "$dir/bin/$tool"
  done
  say "simulated cluster ready in $dir"
}

down() {
  if [[ -d $dir/state ]]; then
    PGK8S_SIM_DIR="$dir/state" PGK8S_SIM_CACHE="$cache" "$dir/bin/pgk8s-sim" teardown || true
  fi
  rm -rf "$dir"
  say "removed $dir"
}

demo() {
  (cd "$repo" && cargo build --release --quiet)
  down >/dev/null 2>&1 || true
  up
  eval "$(print_env)"
  cat <<EOF

  This is a SIMULATED cluster: kubectl and helm are the test suite's fakes
  (tests/sim/pgk8s_sim.py), and every pod is a real PostgreSQL server on this machine.

EOF
  local step
  for step in "deploy -n learnflow --seed" "verify -n learnflow --check-schema" \
              "migrate status -n learnflow" "status -n learnflow"; do
    echo "\$ pgk8s $step"
    # shellcheck disable=SC2086 # the steps are word lists
    "$binary" $step
    echo
  done
  cat <<EOF
Next:
  eval "\$(scripts/sandbox.sh env)"     use this sandbox from your shell, then try
                                          pgk8s psql -c 'select username, role from users'
                                          pgk8s backup -f learnflow.dump
                                          pgk8s --help
  scripts/sandbox.sh down               remove the sandbox
  On a real cluster: open a shell without the sandbox's exports, check
  \`kubectl config current-context\`, and run \`pgk8s deploy -n learnflow\` (see README.md).
EOF
}

case "${1:-}" in
  up) up ;;
  env) print_env ;;
  down) down ;;
  demo) demo ;;
  *) echo "usage: scripts/sandbox.sh demo|up|env|down" >&2; exit 64 ;;
esac
