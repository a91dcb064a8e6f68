#!/bin/sh
# install_test.sh BUILD_DIR: `meson install` into a DESTDIR, then build a tiny
# C client against the installed chip.pc with pkg-config, link it to the
# installed libchip (shared, then static) and run it.
#
# Registered as the meson test "install" (suite "install"); by hand:
#   tests/install/install_test.sh build
# Exit 77 (skip) when pkg-config or a C compiler is missing.
set -eu
build=$(cd "${1:?usage: install_test.sh BUILD_DIR}" && pwd)
command -v pkg-config >/dev/null 2>&1 || { echo "skip: no pkg-config"; exit 77; }
cc=${CC:-cc}
command -v "$cc" >/dev/null 2>&1 || { echo "skip: no C compiler ($cc)"; exit 77; }

dest=$(mktemp -d /tmp/chip-install.XXXXXX)
trap 'rm -rf "$dest"' EXIT INT TERM

fail() { echo "install_test: FAIL: $*" >&2; exit 1; }

# --no-rebuild: meson test has built everything; a ninja run here would race
# with other tests using the same build folder.
meson install -C "$build" --no-rebuild --destdir "$dest" --quiet >"$dest.log" 2>&1 ||
    { cat "$dest.log" >&2; rm -f "$dest.log"; fail "meson install"; }
rm -f "$dest.log"

# Where things went, from the build's own options.
opt() { meson introspect "$build" --buildoptions |
        python3 -c "import json,sys; print([o['value'] for o in json.load(sys.stdin) if o['name']=='$1'][0])"; }
prefix=$(opt prefix)
bindir=$(opt bindir); sbindir=$(opt sbindir); libdir=$(opt libdir)
includedir=$(opt includedir); datadir=$(opt datadir)
# A sanitized libchip needs its runtime in the client too.
san=$(opt b_sanitize)
case $san in none|'') sanflags= ;; *) sanflags="-fsanitize=$(echo "$san" | tr -d "[]' \"")" ;; esac
abs() { case $1 in /*) echo "$dest$1" ;; *) echo "$dest$prefix/$1" ;; esac; }
root=$dest$prefix

for f in "$(abs "$sbindir")/chipd" "$(abs "$bindir")/chipctl"; do
    [ -x "$f" ] || fail "$f is not installed"
done
for f in chip.h chip.hpp registry.h; do
    [ -f "$(abs "$includedir")/chip/$f" ] || fail "include/chip/$f is not installed"
done
lib=$(abs "$libdir")
ls "$lib"/libchip.so.* >/dev/null 2>&1 || fail "no shared libchip in $lib"
[ -f "$lib/libchip.a" ] || fail "no static libchip in $lib"
[ -f "$lib/pkgconfig/chip.pc" ] || fail "no chip.pc in $lib/pkgconfig"
[ -f "$root/lib/systemd/system/chipd.service" ] || fail "chipd.service is not installed"
for f in chip.schema.json sessions.json; do
    [ -f "$(abs "$datadir")/chip/$f" ] || fail "$datadir/chip/$f is not installed"
done
"$(abs "$sbindir")/chipd" --version >/dev/null || fail "the installed chipd does not run"
"$(abs "$sbindir")/chipd" --check "$(abs "$datadir")/chip/sessions.json" >/dev/null 2>&1 ||
    echo "note: the installed sessions.json does not --check here (its commands are relative)"

cat >"$dest/client.c" <<'C'
#include <chip/chip.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void) {
    const char *s = chip_strerror(-ENOSPC);
    if (!s || !*s) return 1;
    /* No chipd listens there: a clean failure, not a crash. */
    chip_client *c = chip_connect("/nonexistent/chip-install-test.sock");
    if (c) { chip_close(c); return 2; }
    printf("%s\n", s);
    return 0;
}
C

# pkg-config must see the DESTDIR tree: PKG_CONFIG_SYSROOT_DIR prefixes the
# -I/-L paths with it. (--define-prefix guesses the prefix from the .pc's
# folder and gets it wrong for a multiarch libdir such as lib/x86_64-linux-gnu.)
export PKG_CONFIG_SYSROOT_DIR="$dest"
# (The system's search path stays: chip.pc names nlohmann_json in Requires.private.)
export PKG_CONFIG_PATH="$lib/pkgconfig"
flags=$(pkg-config --cflags --libs chip) || fail "pkg-config chip"
case $flags in *"$dest"*) ;; *) fail "pkg-config flags do not point into DESTDIR: $flags" ;; esac
# shellcheck disable=SC2086
"$cc" $sanflags -o "$dest/client" "$dest/client.c" $flags || fail "building the client (shared) with: $flags"
out=$(LD_LIBRARY_PATH="$lib" "$dest/client") || fail "the client (shared) exited $?"
[ -n "$out" ] || fail "the client printed nothing"
# It really uses the installed shared library.
LD_LIBRARY_PATH="$lib" ldd "$dest/client" | grep -q "$lib/libchip.so" ||
    fail "the client is not linked to $lib/libchip.so"

# Static: libchip.a with its private dependencies (C++ runtime).
sflags=$(pkg-config --static --cflags --libs chip) || fail "pkg-config --static chip"
cflags=$(pkg-config --cflags chip)
# shellcheck disable=SC2086
"$cc" $sanflags -o "$dest/client-static" "$dest/client.c" $cflags "$lib/libchip.a" \
    $(echo "$sflags" | tr ' ' '\n' | grep -v -e '^-lchip$' -e '^-L' | tr '\n' ' ') ||
    fail "building the client (static) with: $sflags"
"$dest/client-static" >/dev/null || fail "the client (static) exited $?"

echo "install_test: ok ($out)"
