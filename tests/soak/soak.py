#!/usr/bin/env python3
"""chipd under a long mixed load, then checked (issue 9's soak).

Run by scripts/soak, which builds chipd and chipctl. The load, all at once:
  * crash-looping workers: a pool of shell workers that exit 1 a moment after
    they start, restarted with a backoff so the loop is steady; one more that
    leaves orphans behind (chipd, a child subreaper, must reap them);
  * join/leave churn: a pool of workers calling chipctl join and leave in a
    loop, and exiting now and then (chipd removes the dead from their groups);
  * reloads: the spec file rewritten every few seconds, adding and removing a
    worker and changing another's command, applied by the reload op or SIGHUP;
  * connections opened and dropped: closed at once, half-written requests,
    requests whose answer is never read, over-long lines, abandoned waits and
    event streams; and status queries, timed;
  * a log flood: a worker writing numbered lines to a rotated log file;
  * reexecs (chipctl reexec, every --reexec-every seconds): chipd replaced
    by itself under all of the above. The connections a reexec closes are
    counted as such when they end within its window, the event subscriber
    connects again, and the churn workers' chipctl tries again once when it
    lost chipd (exit 3), as a client of an upgraded chipd would.
An event-stream subscriber counts what chipd did.

Checked at the end, against a baseline taken after a warm-up, both with the
load's supervisor stopped and the first spec in place: chipd's open files
(the same set), its resident memory (bounded growth), no zombie child of
chipd, no lost log line (the flooder's numbers all present, once, across the
file and its rotations, sized so that rotation drops nothing), and chipd still
answering. Prints a summary (and writes it as Markdown with --out); exits 1
when a check fails.

This driver is a child subreaper: at the end it kills whatever is left of its
tree by pid, like the benchmark (tests/bench/bench.py, whose helpers it uses).
"""

import argparse
from collections import Counter
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from bench import (  # noqa: E402
    chipd_request, descendants, kill_everything, log, proc_states, proc_table, reap, shm_prefix)

FLOOD_MAX_BYTES = 1 << 20
FLOOD_KEEP = 1000  # the most a spec allows: ~1 GiB before rotation drops a line


# ---------------------------------------------------------------- chipd


def fds(pid):
    """What chipd's open files are: a sorted list of kinds ("pipe", "socket",
    a path), not inode numbers, which change as pipes are made anew."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":")[0] if ":[" in target else target
        out.append(kind)
    return sorted(out)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def zombies_of(pid):
    """Zombie children of PID."""
    return [p for p, (state, ppid) in proc_states().items() if state == "Z" and ppid == pid]


def children_of(pid):
    return [p for p, pp in proc_table().items() if pp == pid]


# ---------------------------------------------------------------- the spec


FLOOD = r"""
i=0
trap 'echo "end $i"; exit 0' TERM
while :; do
    j=0
    while [ $j -lt 200 ]; do
        i=$((i + 1)); j=$((j + 1))
        echo "flood $i"
    done
    sleep 0.05
done
"""

# Joins and leaves of the calling shell (a worker: chipctl's default pid is its
# parent), then an exit: chipd removes the dead worker from its groups.
CHURN = r"""
# Once more when chipd was lost (3: a reexec closed the connection).
ctl() {
    "$CHIPCTL" "$@" >/dev/null 2>&1
    rc=$?
    if [ $rc -eq 3 ]; then "$CHIPCTL" "$@" >/dev/null; rc=$?; fi
    return $rc
}
i=0
while [ $i -lt 60 ]; do
    i=$((i + 1))
    if ctl join "g$((i % 5))"; then echo "join ok"; else echo "join failed"; fi
    if [ $((i % 3)) -eq 0 ]; then
        if ctl leave "g$(((i + 2) % 5))"; then echo "leave ok"; else echo "leave failed"; fi
    fi
    sleep 0.05
done
"""


def make_spec(d, chipctl, variant):
    """Variant 0 is the first spec; 1 adds the worker "extra" and changes the
    orphan maker's command (a restart)."""
    crash_backoff = {"initial": 0.05, "max": 0.4, "factor": 2, "jitter": 0.2, "reset_after": 60}
    load = [
        {"name": "crash", "command": ["/bin/sh", "-c", "echo start $$; sleep 0.1; exit 1"],
         "instances": 6, "backoff": crash_backoff,
         "stdout": {"file": os.path.join(d, "crash.log"), "max_bytes": 65536, "keep": 3}},
        {"name": "orphans",
         "command": ["/bin/sh", "-c", "sleep 0.3 & sleep 0.2 & sleep 0.1; exit 3"],
         "backoff": {"initial": 0.1, "max": 0.2}},
        {"name": "churn", "command": ["/bin/sh", os.path.join(d, "churn.sh")], "instances": 3,
         "env": {"CHIPCTL": chipctl},
         "stdout": {"file": os.path.join(d, "churn.log"), "max_bytes": 1 << 20, "keep": 50}},
    ]
    if variant == 1:
        load[1]["command"][2] = "sleep 0.2 & sleep 0.1; exit 4"
        load.append({"name": "extra", "command": ["/bin/sleep", "1000"]})
    return {
        "registries": ["soak"],
        "root": {"strategy": "one_for_one", "max_restarts": 100, "period": 1, "children": [
            {"name": "flood", "command": ["/bin/sh", os.path.join(d, "flood.sh")],
             "stdout": {"file": os.path.join(d, "flood.log"), "max_bytes": FLOOD_MAX_BYTES,
                        "keep": FLOOD_KEEP}},
            {"name": "load", "supervisor": {
                "strategy": "one_for_one", "max_restarts": 1000000, "period": 1,
                "children": load}},
        ]},
    }


def write_spec(path, spec):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=1)
    os.rename(tmp, path)


# ---------------------------------------------------------------- the load


class Load:
    """The driver's own load: connections, status queries, reloads, events."""

    def __init__(self, sock_path, spec_path, specs, chipd_pid, reexec_every=0):
        self.sock = sock_path
        self.spec_path = spec_path
        self.specs = specs
        self.chipd_pid = chipd_pid
        self.counts = {}
        self.errors = []
        self.status_ms = []
        self.events = {}
        self.variant = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.paused = threading.Event()
        self.idle = [threading.Event(), threading.Event(), threading.Event()]
        self.threads = []
        self.reexec_every = reexec_every
        self.reexec_ms = []
        # Reloads and reexecs one at a time; a reexec's window (while it runs
        # and 1 s after) excuses the connections it closed.
        self.control = threading.Lock()
        self.reexec_window = (0.0, 0.0)

    def count(self, what, n=1):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + n

    def error(self, msg):
        with self.lock:
            if len(self.errors) < 50:
                self.errors.append(msg)

    def start(self):
        self.threads = [threading.Thread(target=self.connections, args=(0,), daemon=True),
                        threading.Thread(target=self.reloads, args=(1,), daemon=True),
                        threading.Thread(target=self.subscriber, daemon=True),
                        threading.Thread(target=self.reexecs, args=(2,), daemon=True)]
        for t in self.threads:
            t.start()

    def pause(self):
        """Until resume(): no connection, no reload, the first spec in place."""
        self.paused.set()
        for e in self.idle:
            if not e.wait(120):
                raise RuntimeError("the load threads did not pause in 120 s")

    def resume(self):
        for e in self.idle:
            e.clear()
        self.paused.clear()

    def wait_if_paused(self, k):
        if self.paused.is_set():
            self.idle[k].set()
            while self.paused.is_set() and not self.stop.is_set():
                time.sleep(0.05)

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.sock)
        return s

    def connections(self, k):
        rnd = random.Random(1)
        while not self.stop.is_set():
            self.wait_if_paused(k)
            if self.stop.is_set():
                break
            what = rnd.choice(["dropped", "half", "unread", "oversized", "wait", "events",
                               "status", "status", "members"])
            t0 = time.monotonic()
            try:
                self.connection(what)
                self.count("conn " + what)
            except (OSError, ValueError, RuntimeError) as e:
                if self.in_reexec_window(t0):
                    self.count("conn closed by a reexec")
                else:
                    self.error(f"connection {what}: {e}")
            time.sleep(0.01)
        self.idle[k].set()

    def connection(self, what):
        if what == "status":
            t0 = time.monotonic()
            r = chipd_request(self.sock, {"op": "status"}, timeout_s=30)
            if not r.get("ok"):
                raise RuntimeError(f"status: {r}")
            self.status_ms.append((time.monotonic() - t0) * 1000)
            return
        if what == "members":
            r = chipd_request(self.sock, {"op": "groups"}, timeout_s=30)
            if not r.get("ok"):
                raise RuntimeError(f"groups: {r}")
            return
        with self.connect() as s:
            if what == "half":
                s.sendall(b'{"op": "sta')
            elif what == "unread":
                s.sendall(b'{"op": "status"}\n{"op": "groups"}\n')
            elif what == "oversized":
                s.sendall(b"x" * (70 * 1024))
                answer = s.recv(4096)
                if b"EMSGSIZE" not in answer:
                    raise RuntimeError(f"oversized line answered {answer[:100]!r}")
            elif what == "wait":
                s.sendall(b'{"op": "wait", "path": "load/crash", "timeout": 5}\n')
            elif what == "events":
                s.sendall(b'{"op": "events", "path": "load"}\n')
                s.recv(4096)

    def reloads(self, k):
        n = 0
        while not self.stop.is_set():
            if self.paused.is_set():
                if self.variant != 0:
                    self.reload(0, n)
                self.wait_if_paused(k)
                continue
            for _ in range(50):  # every 5 s
                if self.stop.is_set() or self.paused.is_set():
                    break
                time.sleep(0.1)
            else:
                n += 1
                self.reload(1 - self.variant, n)
        self.idle[k].set()

    def in_reexec_window(self, t0):
        """Whether something begun at T0 may have met a reexec."""
        with self.lock:
            begin, end = self.reexec_window
        return begin > 0 and t0 <= end + 1.0 and time.monotonic() >= begin

    def reexecs(self, k):
        last = time.monotonic()
        while not self.stop.is_set():
            self.wait_if_paused(k)
            time.sleep(0.1)
            if not self.reexec_every or time.monotonic() - last < self.reexec_every:
                continue
            if self.paused.is_set() or self.stop.is_set():
                continue
            with self.control:
                t0 = time.monotonic()
                with self.lock:
                    self.reexec_window = (t0, float("inf"))
                try:
                    r = chipd_request(self.sock, {"op": "reexec"}, timeout_s=60)
                    if r.get("ok"):
                        self.reexec_ms.append((time.monotonic() - t0) * 1000)
                        self.count("reexec")
                    else:
                        self.error(f"reexec: {r}")
                except OSError as e:
                    self.error(f"reexec: {e}")
                with self.lock:
                    self.reexec_window = (t0, time.monotonic())
            last = time.monotonic()
        self.idle[k].set()

    def reload(self, variant, n):
        """Applies spec VARIANT: by SIGHUP one time in four, else the reload op,
        which answers once the reload is done."""
        with self.control:
            self.reload_now(variant, n)

    def reload_now(self, variant, n):
        write_spec(self.spec_path, self.specs[variant])
        self.variant = variant
        if n % 4 == 0:
            before = self.events.get("reloaded", 0) + self.events.get("reload-failed", 0)
            os.kill(self.chipd_pid, signal.SIGHUP)
            self.count("reload (SIGHUP)")
            deadline = time.monotonic() + 60
            while (self.events.get("reloaded", 0) + self.events.get("reload-failed", 0) == before
                   and time.monotonic() < deadline):
                time.sleep(0.02)
            return
        try:
            r = chipd_request(self.sock, {"op": "reload"}, timeout_s=60)
            self.count("reload (op)")
            if not r.get("ok"):
                self.error(f"reload: {r}")
        except OSError as e:
            self.error(f"reload: {e}")

    def subscriber(self):
        # A reexec ends the stream (its last line is the reexec event): it is
        # followed again at once.
        while not self.stop.is_set():
            t0 = time.monotonic()
            try:
                if self.follow() != "reexec":
                    if not self.stop.is_set():
                        self.error("event stream ended without a reexec")
                    return
                self.count("event stream followed again")
            except (OSError, ValueError) as e:
                if self.stop.is_set():
                    return
                if not self.in_reexec_window(t0):
                    self.error(f"event stream: {e}")
                    return
                time.sleep(0.05)

    def follow(self):
        """Counts events until the stream ends; the last event's kind."""
        last = None
        with self.connect() as s:
            s.settimeout(None)
            s.sendall(b'{"op": "events"}\n')
            buf = b""
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    return last
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    ev = json.loads(line)
                    kind = ev.get("event", "answer")
                    last = kind
                    with self.lock:
                        self.events[kind] = self.events.get(kind, 0) + 1


# ---------------------------------------------------------------- checks


def flood_lines(d):
    """The flooder's numbers across flood.log and its rotations, and its
    "end N" line."""
    seen, end, files, other = [], None, 0, 0
    paths = [os.path.join(d, "flood.log")] + [
        os.path.join(d, f"flood.log.{k}") for k in range(1, FLOOD_KEEP + 1)]
    for p in paths:
        if not os.path.exists(p):
            continue
        files += 1
        with open(p, "rb") as f:
            for line in f:
                if line.startswith(b"flood "):
                    seen.append(int(line[6:]))
                elif line.startswith(b"end "):
                    end = int(line[4:])
                else:
                    other += 1
    return seen, end, files, other


def quiesce(sock, chipd_pid, load):
    """Pauses the driver's load and stops the load supervisor; then the
    measurement: open files, RSS, zombies (after the orphans are gone)."""
    load.pause()
    r = chipd_request(sock, {"op": "stop", "path": "load"}, timeout_s=60)
    if not r.get("ok"):
        raise RuntimeError(f"stop load: {r}")
    # The orphans' sleeps (at most 0.3 s) end and are reaped; then nothing but
    # the flooder is chipd's child.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        kids = children_of(chipd_pid)
        if len(kids) <= 1 and not zombies_of(chipd_pid):
            break
        time.sleep(0.05)
    time.sleep(0.5)  # let chipd's loop go idle
    return {"fds": fds(chipd_pid), "rss_kib": rss_kib(chipd_pid),
            "zombies": zombies_of(chipd_pid), "children": len(children_of(chipd_pid))}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chipd", required=True)
    ap.add_argument("--chipctl", required=True)
    ap.add_argument("--seconds", type=float, default=600, help="load time (after the warm-up)")
    ap.add_argument("--warmup", type=float, default=None, help="default: 10%% of --seconds, 5 to 60")
    ap.add_argument("--out", help="write the summary as Markdown here")
    ap.add_argument("--reexec-every", type=float, default=30,
                    help="seconds between two reexecs under the load (0: none)")
    args = ap.parse_args()
    warmup = args.warmup if args.warmup is not None else min(60, max(5, args.seconds / 10))

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)

    chipd = os.path.realpath(args.chipd)
    chipctl = os.path.realpath(args.chipctl)
    d = tempfile.mkdtemp(prefix="chip-soak-")
    sock = os.path.join(d, "chipd.sock")
    spec_path = os.path.join(d, "soak.json")
    with open(os.path.join(d, "flood.sh"), "w") as f:
        f.write(FLOOD)
    with open(os.path.join(d, "churn.sh"), "w") as f:
        f.write(CHURN)
    specs = [make_spec(d, chipctl, 0), make_spec(d, chipctl, 1)]
    write_spec(spec_path, specs[0])

    failures = []
    summary = {}
    proc = None
    load = None
    try:
        err = open(os.path.join(d, "chipd.log"), "w")
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        proc = subprocess.Popen([chipd, "--socket", sock, spec_path], stdout=err, stderr=err, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if chipd_request(sock, {"op": "wait", "path": "flood", "timeout": 10}, timeout_s=30).get("ok"):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise RuntimeError("chipd did not start in 30 s")
        load = Load(sock, spec_path, specs, proc.pid, args.reexec_every)
        load.start()
        t_start = time.monotonic()

        log(f"soak: warm-up {warmup:.0f} s")
        time.sleep(warmup)
        base = quiesce(sock, proc.pid, load)
        log(f"soak: baseline: {len(base['fds'])} fds, {base['rss_kib']} KiB RSS")
        if chipd_request(sock, {"op": "start", "path": "load"}, timeout_s=60).get("ok") is not True:
            raise RuntimeError("start load failed")
        load.resume()

        log(f"soak: load for {args.seconds:.0f} s")
        t_load = time.monotonic()
        rss_samples = []
        max_zombies = 0
        lingering = set()
        prev_zombies = set()
        while time.monotonic() - t_load < args.seconds:
            if proc.poll() is not None:
                raise RuntimeError(f"chipd exited with {proc.returncode} under load")
            time.sleep(min(10, max(0.1, args.seconds - (time.monotonic() - t_load))))
            rss_samples.append(rss_kib(proc.pid))
            z = set(zombies_of(proc.pid))
            max_zombies = max(max_zombies, len(z))
            lingering |= z & prev_zombies  # the same zombie 10 s later: never reaped
            prev_zombies = z
            el = time.monotonic() - t_load
            log(f"soak: {el:.0f} s: RSS {rss_samples[-1]} KiB, {len(os.listdir(f'/proc/{proc.pid}/fd'))} fds, "
                f"{load.events.get('exit', 0)} exits, {load.events.get('join', 0)} joins")
        load_s = time.monotonic() - t_load

        end = quiesce(sock, proc.pid, load)
        log(f"soak: end: {len(end['fds'])} fds, {end['rss_kib']} KiB RSS")
        load.stop.set()

        # chipd still answers, promptly.
        t0 = time.monotonic()
        status = chipd_request(sock, {"op": "status"}, timeout_s=5)
        answer_ms = (time.monotonic() - t0) * 1000
        if not status.get("ok"):
            failures.append(f"status at the end: {status}")

        # The flooder stops (its "end N" line), chipd writes what its pipe held.
        r = chipd_request(sock, {"op": "stop", "path": "flood"}, timeout_s=60)
        if not r.get("ok"):
            failures.append(f"stop flood: {r}")
        seen, last, files, other = flood_lines(d)
        top = max(seen) if seen else 0
        missing = top - len(set(seen))
        dup = len(seen) - len(set(seen))

        # chipd's clean exit.
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            code = None
            failures.append("chipd did not exit within 30 s of SIGTERM")
        if code not in (0, None):
            failures.append(f"chipd exited {code}")
        left = descendants(os.getpid())

        # ---- the checks
        if base["fds"] != end["fds"]:
            more = Counter(end["fds"]) - Counter(base["fds"])
            fewer = Counter(base["fds"]) - Counter(end["fds"])
            failures.append(f"open files: baseline {len(base['fds'])}, end {len(end['fds'])}: "
                            f"more {dict(more)}, fewer {dict(fewer)}")
        growth = end["rss_kib"] - base["rss_kib"]
        rss_limit = max(4096, base["rss_kib"] // 4)
        if growth > rss_limit:
            failures.append(f"RSS grew {growth} KiB (limit {rss_limit})")
        if end["zombies"]:
            failures.append(f"zombie children at the end: {end['zombies']}")
        if lingering:
            failures.append(f"zombies left unreaped for 10 s: {sorted(lingering)[:10]}")
        if missing or dup or top == 0:
            failures.append(f"flood lines: {len(seen)} read, highest {top}, {missing} missing, "
                            f"{dup} twice")
        if last is None or top not in (last, last - 1):
            failures.append(f"flood end line {last}, highest line {top}")
        if other:
            failures.append(f"{other} torn or foreign lines in flood.log")
        if load.errors:
            failures.extend(f"load: {e}" for e in load.errors)
        if left:
            failures.append(f"processes left after chipd's exit: {left[:10]}")
        churn_failed = 0
        with open(os.path.join(d, "churn.log")) as f:
            for line in f:
                churn_failed += "failed" in line
        if churn_failed:
            failures.append(f"{churn_failed} chipctl join/leave failed")
        if args.reexec_every and args.seconds > 2 * args.reexec_every and not load.reexec_ms:
            failures.append("no reexec under the load")

        sm = sorted(load.status_ms)
        summary = {
            "load_s": round(load_s),
            "warmup_s": round(warmup),
            "total_s": round(time.monotonic() - t_start),
            "events": dict(sorted(load.events.items())),
            "driver": dict(sorted(load.counts.items())),
            "status_ms_p50": round(sm[len(sm) // 2], 2) if sm else None,
            "status_ms_max": round(sm[-1], 2) if sm else None,
            "status_at_end_ms": round(answer_ms, 2),
            "reexecs": len(load.reexec_ms),
            "reexec_ms_max": round(max(load.reexec_ms), 1) if load.reexec_ms else None,
            "fds_baseline": len(base["fds"]), "fds_end": len(end["fds"]),
            "rss_kib_baseline": base["rss_kib"], "rss_kib_end": end["rss_kib"],
            "rss_kib_under_load_min": min(rss_samples) if rss_samples else None,
            "rss_kib_under_load_max": max(rss_samples) if rss_samples else None,
            "zombies_end": len(end["zombies"]), "zombies_max_seen": max_zombies,
            "zombies_lingering": len(lingering),
            "flood_lines": len(seen), "flood_highest": top, "flood_missing": missing,
            "flood_files": files,
            "churn_ok": sum(1 for _ in open(os.path.join(d, "churn.log"))) - churn_failed,
            "chipd_exit": code,
        }
    except KeyboardInterrupt:
        failures.append("interrupted")
    except Exception as e:  # noqa: BLE001 - reported as a failure, then cleaned up
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        if load:
            load.stop.set()
            load.paused.clear()
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except Exception:  # noqa: BLE001
                pass
        kill_everything()
        reap()
        for f in os.listdir("/dev/shm"):
            if f.startswith(shm_prefix(sock)):
                os.unlink(os.path.join("/dev/shm", f))

    print(json.dumps(summary, indent=1))
    for f in failures:
        print(f"FAIL: {f}")
    if failures:
        print(f"soak: chipd's log and the logs are in {d}")
    else:
        print("soak: ok")
        shutil.rmtree(d, ignore_errors=True)
    if args.out and summary:
        write_markdown(args.out, summary, failures)
    return 1 if failures else 0


def write_markdown(path, s, failures):
    ev = s["events"]
    lines = [
        f"Soak of {s['load_s']} s of load (after {s['warmup_s']} s of warm-up), "
        f"{'all checks passed' if not failures else 'FAILED: ' + '; '.join(failures)}.",
        "",
        "| what | figure |",
        "| --- | --- |",
        f"| worker exits / starts / restarts | {ev.get('exit', 0)} / {ev.get('start', 0)} / {ev.get('restart', 0)} |",
        f"| registry joins / leaves (events) | {ev.get('join', 0)} / {ev.get('leave', 0)} |",
        f"| reloads (op, SIGHUP) / reloaded events | {s['driver'].get('reload (op)', 0)}, "
        f"{s['driver'].get('reload (SIGHUP)', 0)} / {ev.get('reloaded', 0)} |",
        "| connections opened and dropped | " + ", ".join(
            f"{k[5:]} {v}" for k, v in s["driver"].items() if k.startswith("conn ")) + " |",
        f"| status answer p50 / max under load | {s['status_ms_p50']} ms / {s['status_ms_max']} ms |",
        f"| chipd's open files, baseline → end | {s['fds_baseline']} → {s['fds_end']} (same set) |"
        if s["fds_baseline"] == s["fds_end"] else
        f"| chipd's open files, baseline → end | {s['fds_baseline']} → {s['fds_end']} |",
        f"| chipd's RSS, baseline → end (under load: min–max) | {s['rss_kib_baseline']} → "
        f"{s['rss_kib_end']} KiB ({s['rss_kib_under_load_min']}–{s['rss_kib_under_load_max']} KiB) |",
        f"| zombie children at the end / most seen at once / left unreaped 10 s | "
        f"{s['zombies_end']} / {s['zombies_max_seen']} / {s['zombies_lingering']} |",
        f"| flood lines written / missing (files) | {s['flood_lines']} / {s['flood_missing']} "
        f"({s['flood_files']}) |",
        f"| reexecs under the load / slowest answer | {s['reexecs']} / {s['reexec_ms_max']} ms |",
        f"| status answered at the end | {s['status_at_end_ms']} ms |",
        f"| chipd's exit status (SIGTERM) | {s['chipd_exit']} |",
    ]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
