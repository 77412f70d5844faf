#!/usr/bin/env bash
# A real Kubernetes control plane on 127.0.0.1 for the second test tier: etcd, kube-apiserver
# (RBAC on), kube-controller-manager and kube-scheduler built by scripts/realcp-build.sh, and
# the kubelet emulator (tests/realcp/kubelet) as the one node. Needs root (network and mount
# namespaces for the pods) and PostgreSQL server binaries.
#
#   scripts/realcp.sh up [--owner PID]   start (or reuse) the control plane; with --owner, stop it
#                                        once process PID has exited
#   scripts/realcp.sh env                print the shell exports to use it (KUBECONFIG, PATH)
#   scripts/realcp.sh down               stop every process by its PID; keep only logs/
#   scripts/realcp.sh status             exit 0 when it is up
#
# State lives in ${PGK8S_REALCP_DIR:-/tmp/pgk8s-realcp}: PKI, kubeconfigs, etcd data, pods and
# volumes, pid/ and logs/. Ports are picked free at start-up.
set -euo pipefail
script="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
dir="${PGK8S_REALCP_DIR:-/tmp/pgk8s-realcp}"
tools="${PGK8S_TOOLS_DIR:-$HOME/.cache/pgk8s-tools}"
k8s_version=v1.34.4
bin="$tools/k8s-$k8s_version"
node=pgk8s-node
components=(etcd kube-apiserver kube-controller-manager kube-scheduler pgk8s-kubelet)

log() { echo "realcp: $*" >&2; }
die() { echo "realcp: error: $*" >&2; exit 1; }

kubectl_bin() {
  if [[ -x $tools/kubectl ]]; then echo "$tools/kubectl"; else command -v kubectl; fi
}

alive() { [[ -f $dir/pid/$1 ]] && kill -0 "$(cat "$dir/pid/$1")" 2>/dev/null; }

is_up() {
  local component
  for component in "${components[@]}"; do alive "$component" || return 1; done
  "$(kubectl_bin)" --kubeconfig "$dir/admin.kubeconfig" get --raw /readyz >/dev/null 2>&1
}

print_env() {
  echo "export KUBECONFIG=$dir/admin.kubeconfig"
  echo "export PATH=$tools:\$PATH"
}

free_ports() { # free_ports N: N distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'EOF'
import socket, sys
sockets = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); sockets.append(s)
print(" ".join(str(s.getsockname()[1]) for s in sockets))
EOF
}

# start NAME ARGS...: runs a component in its own session, output to logs/NAME.log.
start() {
  local name=$1; shift
  setsid "$@" </dev/null >"$dir/logs/$name.log" 2>&1 &
  echo $! >"$dir/pid/$name"
}

wait_for() { # wait_for SECONDS WHAT COMMAND...
  local deadline=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$what did not come up in time (logs in $dir/logs)"
    sleep 0.2
  done
}

make_pki() {
  local pki=$dir/pki
  mkdir -p "$pki"
  local curve=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${curve[@]}" -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
    -subj /CN=pgk8s-realcp-ca 2>/dev/null
  leaf() { # leaf NAME SUBJECT EXTENSIONS
    openssl req -new "${curve[@]}" -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2" 2>/dev/null
    printf '%b' "$3" >"$pki/$1.ext"
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 365 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
  }
  local client='keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n'
  leaf apiserver /CN=kube-apiserver "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
  leaf admin "/O=system:masters/CN=pgk8s-admin" "$client"
  leaf apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  leaf controller-manager /CN=system:kube-controller-manager "$client"
  leaf scheduler /CN=system:kube-scheduler "$client"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key"
  openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

kubeconfig() { # kubeconfig NAME CERT-NAME PORT
  local file=$dir/$1.kubeconfig kubectl; kubectl="$(kubectl_bin)"
  "$kubectl" config set-cluster realcp --server "https://127.0.0.1:$3" \
    --certificate-authority "$dir/pki/ca.crt" --embed-certs --kubeconfig "$file" >/dev/null
  "$kubectl" config set-credentials "$2" --client-certificate "$dir/pki/$2.crt" \
    --client-key "$dir/pki/$2.key" --embed-certs --kubeconfig "$file" >/dev/null
  "$kubectl" config set-context realcp --cluster realcp --user "$2" --kubeconfig "$file" >/dev/null
  "$kubectl" config use-context realcp --kubeconfig "$file" >/dev/null
}

up() {
  local owner=""
  if [[ ${1:-} == --owner ]]; then owner=${2:?--owner needs a PID}; fi
  if is_up; then
    log "already up in $dir"
    print_env
    return
  fi
  [[ $(id -u) -eq 0 ]] || die "needs root: pods run in their own network and mount namespaces"
  local binary
  for binary in etcd kube-apiserver kube-controller-manager kube-scheduler pgk8s-kubelet; do
    [[ -x $bin/$binary ]] || die "$bin/$binary missing: run scripts/realcp-build.sh"
  done
  local started=$SECONDS start_ns; start_ns=$(date +%s%N)
  down_processes
  rm -rf "$dir"
  mkdir -p "$dir"/{pid,logs,etcd}
  chmod 755 "$dir"
  make_pki
  local ports; read -r -a ports <<<"$(free_ports 4)"
  local etcd_port=${ports[0]} peer_port=${ports[1]} api_port=${ports[2]} kubelet_port=${ports[3]}
  kubeconfig admin admin "$api_port"
  kubeconfig controller-manager controller-manager "$api_port"
  kubeconfig scheduler scheduler "$api_port"
  local pki=$dir/pki

  start etcd "$bin/etcd" --name realcp --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "realcp=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn
  start kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address 127.0.0.1 \
    --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 \
    --authorization-mode Node,RBAC --allow-privileged=true \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --endpoint-reconciler-type none --profiling=false
  local kubectl; kubectl="$(kubectl_bin)"
  wait_for 60 kube-apiserver "$kubectl" --kubeconfig "$dir/admin.kubeconfig" get --raw /readyz
  start kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$dir/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/controller-manager.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0 \
    --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --use-service-account-credentials=true \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key"
  start kube-scheduler "$bin/kube-scheduler" \
    --kubeconfig "$dir/scheduler.kubeconfig" \
    --authentication-kubeconfig "$dir/scheduler.kubeconfig" \
    --authorization-kubeconfig "$dir/scheduler.kubeconfig" \
    --leader-elect=false --bind-address 127.0.0.1 --secure-port 0
  start pgk8s-kubelet "$bin/pgk8s-kubelet" --kubeconfig "$dir/admin.kubeconfig" \
    --state-dir "$dir" --port "$kubelet_port" --node-name "$node" ${PGK8S_REALCP_POSTGRES_BIN:+--postgres-bin "$PGK8S_REALCP_POSTGRES_BIN"}
  "$kubectl" --kubeconfig "$dir/admin.kubeconfig" apply -f - >/dev/null <<'EOF'
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: pgk8s.test/hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: expandable
provisioner: pgk8s.test/hostpath
reclaimPolicy: Delete
volumeBindingMode: Immediate
allowVolumeExpansion: true
EOF
  wait_for 60 "node $node" "$kubectl" --kubeconfig "$dir/admin.kubeconfig" wait --for=condition=Ready "node/$node" --timeout 1s
  # The namespace controller and service accounts: "default" exists once the controllers run.
  wait_for 60 "service account controller" "$kubectl" --kubeconfig "$dir/admin.kubeconfig" get serviceaccount default -n default
  local component
  for component in "${components[@]}"; do alive "$component" || die "$component exited (logs in $dir/logs/$component.log)"; done
  local elapsed_ms=$((($(date +%s%N) - start_ns) / 1000000))
  echo "$elapsed_ms" >"$dir/startup-ms"
  log "up in $((elapsed_ms / 1000)).$((elapsed_ms % 1000 / 100)) s: Kubernetes $k8s_version on https://127.0.0.1:$api_port, state in $dir"
  if [[ -n $owner ]]; then
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; PGK8S_REALCP_DIR="$2" "$3" down' \
      watchdog "$owner" "$dir" "$script" </dev/null >>"$dir/logs/watchdog.log" 2>&1 &
    echo $! >"$dir/pid/watchdog"
  fi
  ((SECONDS >= started)) || true
  print_env
}

# down_processes stops the components in reverse order: the kubelet first, so that it stops its
# pods' servers cleanly.
down_processes() {
  [[ -d $dir/pid ]] || return 0
  local index component pid
  for ((index = ${#components[@]} - 1; index >= 0; index--)); do
    component=${components[index]}
    [[ -f $dir/pid/$component ]] || continue
    pid=$(cat "$dir/pid/$component")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      local waited=0
      while kill -0 "$pid" 2>/dev/null && ((waited < 250)); do sleep 0.1; waited=$((waited + 1)); done
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/pid/$component"
  done
}

down() {
  down_processes
  if [[ -f $dir/pid/watchdog ]]; then
    local watchdog; watchdog=$(cat "$dir/pid/watchdog")
    rm -f "$dir/pid/watchdog"
    [[ $watchdog == "$PPID" || $watchdog == "$$" ]] || kill "$watchdog" 2>/dev/null || true
  fi
  [[ -d $dir ]] || return 0
  # Keep the logs for a post-mortem; everything else (keys, etcd, volumes) goes.
  find "$dir" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} +
  log "down ($dir/logs kept)"
}

case "${1:-}" in
  up) shift; up "$@" ;;
  env) print_env ;;
  down) down ;;
  status) is_up ;;
  *) echo "usage: $0 up [--owner PID] | env | down | status" >&2; exit 64 ;;
esac
