#!/usr/bin/env python3
"""selftest.py CHECKER FIXTURES_SRC: check_layers.py must fail on the planted
violations of the fixture tree (and name each of them, and nothing else), and
pass on its clean file alone.

The fixtures are named *.cpp.txt (checked with --suffix .txt) so that neither
the build nor the formatter takes them for sources.
"""

import os
import subprocess
import sys

EXPECTED = [
    'src/core/tree.cpp.txt:4: core: #include "os/clock.hpp": the core includes only the '
    'standard library, core/ and common/',
    'src/core/tree.cpp.txt:9: clock: std::chrono::steady_clock::now() reads the clock: '
    'only src/os and src/uv do',
    'src/cluster/session.cpp.txt:6: cluster: #include "os/clock.hpp": src/cluster includes only '
    'the standard library, nlohmann/json, cluster/ and common/',
    'src/handoff/codec.cpp.txt:7: handoff: #include "spec/loader.hpp": src/handoff includes '
    'only the standard library, common/, core/, spec/spec.hpp and handoff/',
    'src/handoff/codec.cpp.txt:8: handoff: #include <nlohmann/json.hpp>: src/handoff includes '
    'only the standard library, common/, core/, spec/spec.hpp and handoff/',
    'src/daemon/cluster.cpp.txt:2: libcurl: #include <curl/curl.h>: only src/uv includes libcurl',
    'src/daemon/cluster.cpp.txt:8: libcurl: curl_easy_init() calls libcurl: only src/uv does',
    'src/daemon/daemon.cpp.txt:2: libuv: #include <uv.h>: only src/uv includes libuv',
    'src/spec/loader.cpp.txt:7: syscall: ::open() is a system call: only src/os makes them',
]


def run(checker, *args):
    proc = subprocess.run([sys.executable, checker] + list(args), capture_output=True, text=True)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc.returncode, proc.stdout.splitlines()


def main(checker, src):
    failures = []
    rc, lines = run(checker, src, '--suffix', '.txt')
    if rc != 1:
        failures.append('the fixture tree: exit status %d, expected 1' % rc)
    for line in EXPECTED:
        if line not in lines:
            failures.append('not reported: ' + line)
    for line in lines:
        if line not in EXPECTED:
            failures.append('reported, but not planted: ' + line)

    clean = os.path.join(src, 'ctl', 'clean.cpp.txt')
    rc, lines = run(checker, src, '--suffix', '.txt', clean)
    if rc != 0 or lines:
        failures.append('the clean file: exit status %d, expected 0 and no output' % rc)

    for f in failures:
        print('selftest: FAIL: ' + f, file=sys.stderr)
    if not failures:
        print('selftest: the %d planted violations are reported, the clean file passes'
              % len(EXPECTED))
    return 1 if failures else 0


if __name__ == '__main__':
    if len(sys.argv) != 3:
        print('usage: selftest.py CHECKER FIXTURES_SRC', file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2]))
