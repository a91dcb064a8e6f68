#!/usr/bin/env bash
# Runs README.md's Quick tour exactly as written (the first ```sh block after
# "## Quick tour"), in the project's root, as a user would paste it into a
# shell, and checks that every command did what its comment says: all succeed
# but the `join` the tour shows being refused, and chipd exits 0 after the
# tour's shutdown. Exit 0 pass, 1 fail.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tour=$(awk '/^## Quick tour/{t=1} t&&/^```sh/{b=1;next} b&&/^```/{exit} b' README.md)
[ -n "$tour" ] || { echo "tour: no sh block under '## Quick tour' in README.md" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The tour as a script: every failed command is recorded; the background chipd
# is waited for at the end (after the tour's own shutdown).
{
    echo 'set -o errtrace'
    echo "trap 'echo \"\$BASH_COMMAND\" >>\"$out/failed\"' ERR"
    echo "$tour"
    echo 'wait $! ; echo "chipd exit $?" >>'"\"$out/result\""
} >"$out/tour.sh"
timeout 900 bash "$out/tour.sh" >"$out/stdout" 2>"$out/stderr"
status=$?

fail=0
check() { if ! eval "$1"; then echo "tour: FAILED: $2" >&2; fail=1; fi; }
check '[ $status -eq 0 ]' "the tour script exited $status"
check 'grep -qx "chipd exit 0" "$out/result" 2>/dev/null' "chipd did not exit 0 after the tour's shutdown"
failed=$(cat "$out/failed" 2>/dev/null || true)
check '[ "$failed" = "chipctl join a --pid \$\$" ]' "commands that failed (only the refused join should): ${failed:-none}"
check '[ $(grep -cE "^[0-9]+$" "$out/stdout") -eq 2 ]' "chipctl members a did not print two pids"
check 'grep -qE "^a +2$" "$out/stdout"' "chipctl groups did not show group a with 2 members"
if [ $fail -ne 0 ]; then
    echo "--- tour stdout" >&2; cat "$out/stdout" >&2
    echo "--- tour stderr" >&2; tail -50 "$out/stderr" >&2
    exit 1
fi
echo "tour: ran as pasted ($(grep -c . <<<"$tour") lines)" >&2
