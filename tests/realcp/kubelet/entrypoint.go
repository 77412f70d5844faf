package main

// entrypointScript is what the container runs instead of the Bitnami image's entrypoint: on an
// empty volume it does what that image does on its first start (a cluster whose superuser
// `postgres` has the password of POSTGRES_POSTGRES_PASSWORD_FILE, the application user of
// POSTGRES_USER/POSTGRES_PASSWORD_FILE, the database POSTGRES_DATABASE owned by it, the
// replication user in replication mode, password authentication for every connection), then
// runs the server in the foreground. Passwords are read from the mounted Secret files by initdb
// and psql themselves: they never appear in an argument list or in the log.
const entrypointScript = `#!/bin/sh
set -e
umask 077
volume="${POSTGRESQL_VOLUME_DIR:-/bitnami/postgresql}"
data="${PGDATA:-$volume/data}"
port="${POSTGRESQL_PORT_NUMBER:-5432}"
info() { echo "postgresql $(date +%H:%M:%S.%2N) INFO  ==> $*"; }

info "** Starting PostgreSQL setup **"
if [ ! -f "$data/PG_VERSION" ]; then
  info "Initializing PostgreSQL database..."
  mkdir -p "$data"
  chmod 700 "$data"
  superuser_file="${POSTGRES_POSTGRES_PASSWORD_FILE:-$POSTGRES_PASSWORD_FILE}"
  if [ -z "$POSTGRES_USER" ] || [ "$POSTGRES_USER" = postgres ]; then
    superuser_file="${POSTGRES_PASSWORD_FILE:-$superuser_file}"
  fi
  if [ ! -f "$superuser_file" ]; then
    echo "postgresql $(date +%H:%M:%S.%2N) ERROR ==> The POSTGRES_PASSWORD environment variable is empty or not set." >&2
    exit 1
  fi
  initdb -D "$data" -U postgres --pwfile="$superuser_file" -A md5 -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$data/postgresql.conf" <<EOF
listen_addresses = '*'
port = $port
unix_socket_directories = '/tmp'
EOF
  echo "local all all trust" >"$data/pg_hba.conf"
  pg_ctl -D "$data" -w -s -o "-c listen_addresses=''" start
  create_app=false
  owner=postgres
  if [ -n "$POSTGRES_USER" ] && [ "$POSTGRES_USER" != postgres ]; then
    create_app=true
    owner="$POSTGRES_USER"
  fi
  database="${POSTGRES_DATABASE:-postgres}"
  create_db=false
  [ "$database" = postgres ] || create_db=true
  replication=false
  [ "$POSTGRES_REPLICATION_MODE" = master ] && replication=true
  psql -X -q -v ON_ERROR_STOP=1 -h /tmp -p "$port" -U postgres -d postgres \
    -v create_app="$create_app" -v app_user="$POSTGRES_USER" -v owner="$owner" \
    -v create_db="$create_db" -v database="$database" \
    -v replication="$replication" -v replication_user="${POSTGRES_REPLICATION_USER:-repl_user}" \
    -f /.pgk8s/init.sql
  pg_ctl -D "$data" -w -s -m fast stop
  cat >"$data/pg_hba.conf" <<EOF
local all all md5
host all all 0.0.0.0/0 md5
host all all ::/0 md5
host replication all 0.0.0.0/0 md5
EOF
  touch "$volume/.initialized"
  info "PostgreSQL initialized"
fi
info "** PostgreSQL setup finished! **"
info "** Starting PostgreSQL **"
exec postgres -D "$data"
`

// initSQL creates the roles and the database; psql reads each password from its Secret file
// with a backquoted command, so it travels neither in argv nor in the environment.
const initSQL = `\if :create_app
\set password ` + "`cat \"$POSTGRES_PASSWORD_FILE\"`" + `
CREATE ROLE :"app_user" LOGIN PASSWORD :'password';
\unset password
\endif
\if :create_db
CREATE DATABASE :"database" OWNER :"owner";
\endif
\if :replication
\set password ` + "`cat \"$POSTGRES_REPLICATION_PASSWORD_FILE\"`" + `
CREATE ROLE :"replication_user" REPLICATION LOGIN PASSWORD :'password';
\unset password
\endif
`
