#!/usr/bin/env bash
# Prints the directory of the Bitnami postgresql chart 17.1.0 (with its `common` dependency in
# charts/) that the real-control-plane tier deploys with `pgk8s deploy --chart DIR`.
#
# The chart's home, registry-1.docker.io, is out of reach here, and no package registry this
# project may use (crates.io, PyPI, npm, Debian, the Go module proxy for Go modules) publishes it.
# So the chart is looked for, in order, in:
#   1. $PGK8S_REALCP_CHART          a chart directory or .tgz of your own (a mirror, a pull)
#   2. the tools cache              ${PGK8S_TOOLS_DIR:-~/.cache/pgk8s-tools}/charts/postgresql-17.1.0/
#   3. the shared directory         ../shared/charts/postgresql-17.1.0.tgz (or a directory)
# A .tgz is unpacked into the cache. Nothing here is committed to the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
version=17.1.0
tools="${PGK8S_TOOLS_DIR:-$HOME/.cache/pgk8s-tools}"
cache="$tools/charts/postgresql-$version"

valid() { # valid DIR: the real chart, at the pinned version, with its dependency vendored
  [[ -f $1/Chart.yaml && -d $1/templates ]] &&
    grep -qx "version: $version" "$1/Chart.yaml" &&
    grep -qx 'name: postgresql' "$1/Chart.yaml" &&
    compgen -G "$1/charts/common*" >/dev/null
}

from() { # from PATH: prints the chart directory PATH provides, if it is a valid chart
  local source=$1
  if [[ -d $source ]] && valid "$source"; then
    echo "$source"
    return 0
  fi
  if [[ -f $source ]]; then
    local tmp; tmp="$(mktemp -d)"
    tar -xzf "$source" -C "$tmp"
    if valid "$tmp/postgresql"; then
      rm -rf "$cache" && mkdir -p "$(dirname "$cache")" && mv "$tmp/postgresql" "$cache"
      rm -rf "$tmp"
      echo "$cache"
      return 0
    fi
    rm -rf "$tmp"
  fi
  return 1
}

for candidate in "${PGK8S_REALCP_CHART:-}" "$cache" "../shared/charts/postgresql-$version.tgz" "../shared/charts/postgresql-$version"; do
  [[ -n $candidate ]] || continue
  if chart="$(from "$candidate")"; then
    echo "realcp-chart: using $chart" >&2
    echo "$chart"
    exit 0
  fi
done
cat >&2 <<EOF
realcp-chart: error: the Bitnami postgresql chart $version is not available offline.
  Put it (with charts/common) at $cache, or point PGK8S_REALCP_CHART at a copy
  (e.g. \`helm pull oci://registry-1.docker.io/bitnamicharts/postgresql --version $version\`
  on a machine with access, then copy the .tgz here).
EOF
exit 1
