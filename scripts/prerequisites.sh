#!/usr/bin/env bash
# Installs what pgk8s's simulated cluster needs when the machine lacks it: PostgreSQL server
# binaries (Debian's postgresql package), runuser (util-linux), PyYAML for the simulator, and —
# with `--tests` — Bats. Uses apt-get (as root, or through sudo) and pip; does nothing when all is
# there. Used by .ci/run and scripts/sandbox.sh.
set -euo pipefail

packages=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || command -v initdb >/dev/null || packages+=(postgresql)
command -v runuser >/dev/null || packages+=(util-linux)
[[ ${1:-} != --tests ]] || command -v bats >/dev/null || packages+=(bats)
if ((${#packages[@]})); then
  sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  echo "installing: ${packages[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${packages[@]}" >/dev/null
fi
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
