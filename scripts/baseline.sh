#!/usr/bin/env bash
# The shell-script way pgk8s is measured against: a faithful re-implementation of how the seed
# plan's scripts work. One `kubectl get` to find the pod, then one `kubectl exec … psql -f` per
# SQL file; `kubectl wait` plus separate psql calls to verify; no migration history, no locking.
#
# Usage: baseline.sh deploy|migrate DIR|verify|seed   (env: NS, DB; kubectl/helm on PATH)
set -euo pipefail
NS=${NS:-learnflow}
DB=${DB:-learnflow}
SELECTOR=app.kubernetes.io/name=postgresql,app.kubernetes.io/component=primary
here=$(cd "$(dirname "$0")/.." && pwd)

pod() {
  kubectl get pods -n "$NS" -l "$SELECTOR" -o json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["items"][0]["metadata"]["name"])'
}

psql_in_pod() { # SQL on stdin
  kubectl exec -i "$POD" -n "$NS" -c postgresql -- sh -c \
    "PGPASSWORD=\"\$(cat /opt/bitnami/postgresql/secrets/postgres-password)\" psql -X -q -v ON_ERROR_STOP=1 -U postgres -d $DB -f -"
}

migrate() { # one exec per file, in name order
  POD=$(pod)
  for file in "$1"/*.sql; do
    case "$file" in *.down.sql) continue ;; esac
    psql_in_pod < "$file" >/dev/null
  done
}

verify() {
  kubectl wait --for=condition=ready pod -l "$SELECTOR" -n "$NS" --timeout=30s >/dev/null
  POD=$(pod)
  echo 'select 1;' | psql_in_pod >/dev/null
  echo "select count(*) from information_schema.tables where table_schema = 'public';" | psql_in_pod >/dev/null
}

seed() {
  POD=$(pod)
  for file in "$here"/migrations/seed/*.sql; do
    { echo '\set pgk8s_update_existing false'; cat "$file"; } | psql_in_pod >/dev/null
  done
}

deploy() {
  password=$(head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9')
  printf '{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"%s"}}' "$NS" | kubectl apply -f - >/dev/null
  printf '{"apiVersion":"v1","kind":"Secret","metadata":{"name":"postgresql-credentials","namespace":"%s"},"data":{"postgres-password":"%s","password":"%s"}}' \
    "$NS" "$(printf %s "$password" | base64)" "$(printf %s "$password" | base64)" | kubectl apply -f - >/dev/null
  printf 'auth:\n  existingSecret: postgresql-credentials\n  database: %s\n  username: learnflow\n' "$DB" |
    helm upgrade --install postgresql oci://registry-1.docker.io/bitnamicharts/postgresql --version 17.1.0 \
      -n "$NS" --wait --timeout 300s -f - >/dev/null
  kubectl wait --for=condition=ready pod -l "$SELECTOR" -n "$NS" --timeout=300s >/dev/null
  migrate "$here/migrations"
}

"$@"
