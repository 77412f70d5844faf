#!/usr/bin/env bash
# Builds (once per machine) what the real-control-plane test tier needs, into a cache:
#   ${PGK8S_TOOLS_DIR:-~/.cache/pgk8s-tools}/k8s-v1.34.4/
#     kube-apiserver kube-controller-manager kube-scheduler etcd   (from Go modules)
#     pgk8s-kubelet                                                (tests/realcp/kubelet)
#   .../kubectl         kubectl 1.34 (get-helm.sh kubectl), helm3, helm4
#   .../charts/         the chart the tier deploys (see scripts/realcp-chart.sh)
# Idempotent: each part is rebuilt only when its inputs changed (a stamp holds their hash), so a
# warm run takes seconds. Cold: about 8 minutes on 2 cores. Prints the cache directory.
#
# The pods run the machine's PostgreSQL (Debian's 15): the npm registry's PostgreSQL 17 build
# ships the server without psql, pg_dump and pg_restore, which pgk8s runs inside the pod.
#
# Usage: scripts/realcp-build.sh [all|control-plane|kubelet|tools]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

k8s_version=v1.34.4
tools="${PGK8S_TOOLS_DIR:-$HOME/.cache/pgk8s-tools}"
out="$tools/k8s-$k8s_version"
want="${1:-all}"
mkdir -p "$out"

export PATH="$PATH:/usr/local/go/bin"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
command -v go >/dev/null || { echo "error: go not found (the tier builds Kubernetes from Go modules)" >&2; exit 3; }

log() { echo "realcp-build: $*" >&2; }

# stamp_ok NAME HASH: whether NAME was built from inputs hashing to HASH.
stamp_ok() { [[ -f "$out/.stamp-$1" && "$(cat "$out/.stamp-$1")" == "$2" ]]; }
stamp() { echo "$2" >"$out/.stamp-$1"; }
hash_of() { cat "$@" | sha256sum | cut -c1-16; }

build_control_plane() {
  local module="$root/tests/realcp/k8s"
  local inputs; inputs="$(hash_of "$module/go.mod" "$module/go.sum" "$0")"
  if stamp_ok control-plane "$inputs" && [[ -x $out/kube-apiserver && -x $out/kube-controller-manager && -x $out/kube-scheduler && -x $out/etcd ]]; then
    return
  fi
  log "building kube-apiserver, kube-controller-manager, kube-scheduler $k8s_version and etcd (cold: ~8 min on 2 cores)"
  local started=$SECONDS
  local minor=${k8s_version#v1.}; minor=${minor%%.*}
  # What `kubectl version` and /version report: the same variables hack/lib/version.sh sets.
  local build_date="2026-02-10T12:53:36Z"
  local pkg
  local ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  (
    cd "$module"
    nice -n 10 go build -trimpath -ldflags "$ldflags" -o "$out/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler
    nice -n 10 go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3
  )
  stamp control-plane "$inputs"
  log "control plane built in $((SECONDS - started)) s"
}

build_kubelet() {
  local module="$root/tests/realcp/kubelet"
  local inputs; inputs="$(hash_of "$module"/go.mod "$module"/go.sum "$module"/*.go)"
  if stamp_ok kubelet "$inputs" && [[ -x $out/pgk8s-kubelet ]]; then
    return
  fi
  log "building the kubelet emulator (tests/realcp/kubelet)"
  local started=$SECONDS
  (cd "$module" && nice -n 10 go build -trimpath -ldflags "-s -w" -o "$out/pgk8s-kubelet" .)
  stamp kubelet "$inputs"
  log "kubelet emulator built in $((SECONDS - started)) s"
}

install_tools() {
  local helm_script=../shared/tools/get-helm.sh
  [[ -f $helm_script ]] || helm_script=scripts/get-helm.sh
  PGK8S_TOOLS_DIR="$tools" bash "$helm_script" all >/dev/null
  PGK8S_TOOLS_DIR="$tools" bash "$helm_script" kubectl >/dev/null
}

case "$want" in
  control-plane) build_control_plane ;;
  kubelet) build_kubelet ;;
  tools) install_tools ;;
  all)
    install_tools
    build_control_plane
    build_kubelet
    bash scripts/realcp-chart.sh >/dev/null
    ;;
  *) echo "usage: $0 [all|control-plane|kubelet|tools]" >&2; exit 64 ;;
esac
echo "$out"
