#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages that building and testing deltacast needs and a
# fresh machine may lack. Safe to run again: a package that is already installed is
# skipped, and `apt-get update` runs only when something is missing.
#
#   bash scripts/setup-system.sh             everything: build, tests, lint, benchmarks, later features
#   bash scripts/setup-system.sh --minimal   only what `npm install` needs to build the addon
#
# It cannot install Node.js itself; it checks that node >= 18 and npm are there and says so if not.
set -euo pipefail

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
}

minimal=0
for arg in "$@"; do
  case "$arg" in
    --minimal) minimal=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "setup-system: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

say() { printf 'setup-system: %s\n' "$*"; }

# What `npm install` (scripts/build.js -> CMake) needs.
build_packages=(g++ cmake make libboost-dev rapidjson-dev)
# What `npm test`, `npm run lint`, `npm run test:asan`, scripts/fuzz.sh (clang with
# libFuzzer) and the benchmarks need on top.
dev_packages=(libgtest-dev libbenchmark-dev clang-format clang)
# Nice to have: skipped with a warning when the distribution has no such package
# (Ubuntu, for one, ships chromium only as a snap). libclang-rt-dev holds libFuzzer's
# runtime where clang does not bring it along (Debian 12 and later).
optional_packages=(valgrind redis-server chromium libclang-rt-dev)

# ---- Node.js (checked, never installed) ---------------------------------------------
node_problem=""
if ! command -v node >/dev/null 2>&1; then
  node_problem="node was not found. Install Node.js 18 or newer (with npm) first, e.g. from https://nodejs.org or your distribution's nodejs package."
else
  node_version="$(node -p 'process.versions.node' 2>/dev/null || echo 0)"
  node_major="${node_version%%.*}"
  if ! [[ "$node_major" =~ ^[0-9]+$ ]] || ((node_major < 18)); then
    node_problem="node $node_version is too old: deltacast needs Node.js 18 or newer ($(command -v node))."
  else
    say "node $node_version ok ($(command -v node))"
  fi
fi
if [[ -z "$node_problem" ]] && ! command -v npm >/dev/null 2>&1; then
  node_problem="npm was not found next to node. Install npm (Debian/Ubuntu: the npm package, or the official Node.js tarball, which includes it)."
elif [[ -z "$node_problem" ]]; then
  say "npm $(npm --version 2>/dev/null || echo '?') ok"
fi

# scripts/build.js compiles against node_api.h from <node prefix>/include/node or
# /usr/include/node. Debian's own nodejs package keeps those headers in libnode-dev.
if [[ -z "$node_problem" ]]; then
  node_bin="$(readlink -f "$(command -v node)")"
  node_prefix="$(dirname "$(dirname "$node_bin")")"
  if [[ ! -f "$node_prefix/include/node/node_api.h" && ! -f /usr/include/node/node_api.h ]]; then
    if command -v dpkg >/dev/null 2>&1 && dpkg -S "$node_bin" 2>/dev/null | grep -q '^nodejs:'; then
      build_packages+=(libnode-dev)
    else
      say "warning: the Node.js headers (node_api.h) are not in $node_prefix/include/node; the addon build will need them (npm_config_nodedir can point at them)."
    fi
  fi
fi

# ---- system packages ----------------------------------------------------------------
if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system: this script needs dpkg and apt-get (Debian/Ubuntu). Install these by hand:" >&2
  echo "  ${build_packages[*]} ${dev_packages[*]} ${optional_packages[*]}" >&2
  exit 1
fi

wanted=("${build_packages[@]}")
if ((!minimal)); then
  wanted+=("${dev_packages[@]}" "${optional_packages[@]}")
fi

is_installed() {
  dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'
}
is_optional() {
  local p
  for p in "${optional_packages[@]}"; do [[ "$p" == "$1" ]] && return 0; done
  return 1
}

present=()
missing=()
for pkg in "${wanted[@]}"; do
  if is_installed "$pkg"; then present+=("$pkg"); else missing+=("$pkg"); fi
done
if ((${#present[@]})); then
  say "already installed, skipped: ${present[*]}"
fi

if ((${#missing[@]})); then
  if [[ "$(id -u)" -eq 0 ]]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "setup-system: not root and sudo is not available. As root, run:" >&2
    echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
  fi

  say "missing: ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update

  to_install=()
  unavailable=()
  for pkg in "${missing[@]}"; do
    candidate="$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p')"
    if is_optional "$pkg" && [[ -z "$candidate" || "$candidate" == "(none)" ]]; then
      unavailable+=("$pkg")
    else
      to_install+=("$pkg")
    fi
  done
  if ((${#unavailable[@]})); then
    say "warning: no installable package for ${unavailable[*]} in this distribution's archive; skipped (optional)"
  fi
  if ((${#to_install[@]})); then
    say "installing: ${to_install[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends "${to_install[@]}"
    say "installed: ${to_install[*]}"
  fi
else
  say "nothing to install"
fi

# The core is C++20: g++ 10 or newer.
if command -v g++ >/dev/null 2>&1; then
  gxx_major="$(g++ -dumpversion 2>/dev/null | cut -d. -f1)"
  if [[ "$gxx_major" =~ ^[0-9]+$ ]] && ((gxx_major < 10)); then
    say "warning: g++ $gxx_major is too old for C++20; install g++-10 or newer and set CXX to it."
  fi
fi

if [[ -n "$node_problem" ]]; then
  echo "setup-system: $node_problem" >&2
  exit 1
fi
say "done"
