#!/usr/bin/env bash
# Runs README.md's Quick tour exactly as written (the first ```sh block after
# "## Quick tour") as a user would paste it into a shell, in the project's
# root, and checks that every command did what its comment says: all succeed
# but the `join` the tour shows being refused, `members a` prints two pids,
# `groups` shows a 2, and chipd exits 0 after the tour's shutdown.
# Run as root, it runs the tour twice: as root in this tree, then as the user
# nobody in a clone of it that nobody owns (the other defaults: its own build,
# the socket in /tmp/chip-65534). Exit 0 pass, 1 fail, 77 when the non-root
# run cannot be made here (no setpriv, no user nobody, no git).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tour=$(awk '/^## Quick tour/{t=1} t&&/^```sh/{b=1;next} b&&/^```/{exit} b' "$root/README.md")
[ -n "$tour" ] || { echo "tour: no sh block under '## Quick tour' in README.md" >&2; exit 1; }

scratch=$(mktemp -d)
chmod 755 "$scratch"
trap 'rm -rf "$scratch"' EXIT

# run_tour NAME DIR [COMMAND PREFIX...]: the tour in DIR as a script, every
# failed command recorded, the background chipd waited for at the end; then
# the checks. Returns 0 or 1.
run_tour() {
    local name=$1 dir=$2
    shift 2
    local out=$scratch/$name
    mkdir -p "$out"
    chmod 777 "$out"
    {
        echo 'set -o errtrace'
        echo "trap 'echo \"\$BASH_COMMAND\" >>\"$out/failed\"' ERR"
        echo "$tour"
        echo 'wait $! ; echo "chipd exit $?" >>'"\"$out/result\""
    } >"$out/tour.sh"
    (cd "$dir" && timeout 900 "$@" bash "$out/tour.sh" >"$out/stdout" 2>"$out/stderr")
    local status=$? fail=0
    check() { if ! eval "$1"; then echo "tour ($name): FAILED: $2" >&2; fail=1; fi; }
    check '[ $status -eq 0 ]' "the tour script exited $status"
    check 'grep -qx "chipd exit 0" "$out/result" 2>/dev/null' "chipd did not exit 0 after the tour's shutdown"
    local failed
    failed=$(cat "$out/failed" 2>/dev/null || true)
    check '[ "$failed" = "chipctl join a --pid \$\$" ]' "commands that failed (only the refused join should): ${failed:-none}"
    check '[ $(grep -cE "^[0-9]+$" "$out/stdout") -eq 2 ]' "chipctl members a did not print two pids"
    check 'grep -qE "^a +2$" "$out/stdout"' "chipctl groups did not show group a with 2 members"
    if [ $fail -ne 0 ]; then
        echo "--- tour ($name) stdout" >&2; cat "$out/stdout" >&2
        echo "--- tour ($name) stderr" >&2; tail -50 "$out/stderr" >&2
        return 1
    fi
    echo "tour ($name): ran as pasted ($(grep -c . <<<"$tour") lines)" >&2
    return 0
}

run_tour "$(id -un)" "$root" || exit 1
[ "$(id -u)" -eq 0 ] || exit 0

# Again as a user who is not root, in a clone of its own.
for tool in setpriv git; do
    command -v $tool >/dev/null || { echo "tour (nobody): SKIP: no $tool" >&2; exit 77; }
done
id nobody >/dev/null 2>&1 || { echo "tour (nobody): SKIP: no user nobody" >&2; exit 77; }
uid=$(id -u nobody)
gid=$(id -g nobody)
# A folder left by an earlier run as this uid would be refused unless it is
# right: start from none.
if [ -e "/tmp/chip-$uid" ] && ! [ "$(stat -c %u:%a "/tmp/chip-$uid")" = "$uid:700" ]; then
    echo "tour (nobody): SKIP: /tmp/chip-$uid exists and is not nobody's 0700 folder" >&2
    exit 77
fi
git clone -q "$root" "$scratch/chip" || exit 1
chown -R "$uid:$gid" "$scratch/chip"
run_tour nobody "$scratch/chip" \
    setpriv --reuid="$uid" --regid="$gid" --clear-groups \
    env -i PATH=/usr/local/bin:/usr/bin:/bin HOME="$scratch/chip" LANG=C.UTF-8 || exit 1
