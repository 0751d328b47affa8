#!/usr/bin/env bash
# Installs the Debian packages regmix needs (only those missing), then configures and builds.
#   scripts/setup.sh [BUILD_DIR] [extra meson options...]
# Environment: REGMIX_EXTRA_PACKAGES adds packages (e.g. the bench's python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${1:-build}
shift || true

packages=(
  build-essential pkg-config meson ninja-build
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libsqlite3-dev sqlite3 libuv1-dev
  libopenblas-dev liblapacke-dev libdnnl-dev libxgboost-dev libfyaml-dev libjansson-dev
  libopenmpi-dev openmpi-bin libsystemd-dev libmicrohttpd-dev
  python3 groff-base xz-utils jq
  slurmctld slurmd slurm-client munge python3-yaml python3-jsonschema
  chromium
)
# The browser tests (tests/browser) run node; a machine with another Node.js (e.g. NodeSource's,
# which bundles npm) keeps it: Debian's are installed only when the commands are missing.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
# shellcheck disable=SC2206
packages+=(${REGMIX_EXTRA_PACKAGES:-})

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null
  "${sudo_cmd[@]}" apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" >/dev/null
fi

# puppeteer-core for tests/browser, pinned by its package-lock.json; it never downloads a browser
# (the tests use /usr/bin/chromium). Installed once; nothing is fetched when the tests run.
want_pptr=$(sed -n 's/.*"puppeteer-core": "\([^"]*\)".*/\1/p' tests/browser/package.json)
have_pptr=$(sed -n 's/^  "version": "\([^"]*\)".*/\1/p' \
  tests/browser/node_modules/puppeteer-core/package.json 2>/dev/null || true)
if [ "$have_pptr" != "$want_pptr" ]; then
  echo "setup: npm ci in tests/browser (puppeteer-core)" >&2
  PUPPETEER_SKIP_DOWNLOAD=1 npm ci --prefix tests/browser --ignore-scripts --no-audit --no-fund \
    --loglevel=error >/dev/null
fi

# The CUDA backend is built when nvcc is found (meson looks only on PATH).
if [ -x /usr/local/cuda/bin/nvcc ] && ! command -v nvcc >/dev/null; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" "$@" >/dev/null
elif [ $# -gt 0 ]; then
  meson configure "$build_dir" "$@" >/dev/null
fi
ninja -C "$build_dir" >/dev/null 2>"$build_dir/ninja.err" || { cat "$build_dir/ninja.err" >&2; ninja -C "$build_dir"; exit 1; }
echo "setup: built in $build_dir" >&2
