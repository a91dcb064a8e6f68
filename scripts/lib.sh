# Shared by scripts/run, scripts/test and scripts/bench: find the project and
# install the Debian packages chip needs when they are missing.
set -euo pipefail

CHIP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export CHIP_ROOT

# ensure_packages PKG...: apt-get install whatever of PKG is not installed.
ensure_packages() {
    local missing=()
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "chip: installing ${missing[*]}" >&2
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The build dependencies (README.md, "Files") and the compilers we check with.
ensure_build_deps() {
    ensure_packages libuv1-dev libcurl4-openssl-dev nlohmann-json3-dev libcli11-dev doctest-dev \
        meson ninja-build pkg-config g++ clang
}

# What the cluster tests start (tests/integration/cluster_test.cpp): a real etcd
# on loopback ports, and openssl for their TLS certificates.
ensure_test_deps() {
    ensure_packages etcd-server etcd-client openssl
}

# configure DIR [meson options...]: set up a build folder, or reuse it.
configure() {
    local dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then
        meson configure "$dir" "$@" >/dev/null
    else
        meson setup "$dir" "$@" >/dev/null
    fi
}
