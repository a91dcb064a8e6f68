#!/usr/bin/env python3
"""chip's benchmark beside supervisord, runit, s6 and daemontools (issue 5).

Run by scripts/bench, which builds the programs this drives (BIN: worker,
bare_loop, registry_bench) and a release chipd. Python because supervisord
brings it anyway and the bookkeeping (process trees, quantiles, tables) is
plain here; every measured thing is a C program or the supervisors themselves.

This driver makes itself a child subreaper, so every process a supervisor
leaves behind is reparented to it; after each run it stops and kills its whole
tree by pid (SIGSTOP first, so nothing restarts in between) and checks that
nothing is left. Every wait has a deadline.
"""

import argparse
import base64
import ctypes
import datetime
import json
import os
import shutil
import signal
import socket
import selectors
import statistics
import subprocess
import sys
import tempfile
import threading
import time

LINE = 38  # bytes per worker log line (tests/bench/worker.c)
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def now_ns():
    return time.monotonic_ns()  # CLOCK_MONOTONIC, the workers' clock


# ---------------------------------------------------------------- processes


def proc_states():
    """pid -> (state, ppid) for every process, from /proc/PID/stat."""
    table = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rfind(")") + 2:].split()
        table[int(d)] = (rest[0], int(rest[1]))
    return table


def proc_table():
    """pid -> ppid for every process."""
    return {pid: ppid for pid, (_, ppid) in proc_states().items()}


def descendants(root, table=None):
    table = table or proc_table()
    kids = {}
    for pid, ppid in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        for k in kids.get(p, []):
            out.append(k)
            todo.append(k)
    return out


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def kill_everything():
    """Kills every descendant of this driver, by pid, and checks none is left."""
    me = os.getpid()
    for _ in range(100):
        pids = descendants(me)
        if not pids:
            return
        for sig in (signal.SIGSTOP, signal.SIGKILL):
            for p in pids:
                try:
                    os.kill(p, sig)
                except ProcessLookupError:
                    pass
        time.sleep(0.05)
        reap()
    left = descendants(me)
    if left:
        raise RuntimeError(f"processes left behind: {left[:10]}")


def exe(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def supervisor_pids(root, worker):
    """The supervisor's own processes: ROOT and its direct children that are not
    workers (runsv, s6-supervise, supervise); never the workers."""
    table = proc_table()
    pids = [root]
    for pid, ppid in table.items():
        if ppid == root and exe(pid) != worker:
            pids.append(pid)
    return pids


def memory_kib(pids):
    rss = pss = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def activity(pids):
    """(context switches, cpu ns) summed over every thread of PIDS."""
    switches = cpu = 0
    for p in pids:
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/status") as f:
                    for line in f:
                        if "ctxt_switches:" in line:
                            switches += int(line.split()[1])
                with open(f"/proc/{p}/task/{t}/schedstat") as f:
                    cpu += int(f.read().split()[0])
            except OSError:
                pass
    return switches, cpu


# ---------------------------------------------------------------- worker logs


def read_log(path):
    """[(kind, slot, pid, stamp)] from a worker log."""
    out = []
    with open(path) as f:
        for line in f:
            k, slot, pid, t = line.split()
            out.append((k, int(slot), int(pid), int(t)))
    return out


def wait_lines(path, n, deadline):
    while now_ns() < deadline:
        if os.path.getsize(path) >= n * LINE:
            return True
        time.sleep(0.005)
    return False


def restart_latencies(events):
    """Next start minus previous exit of the same slot, in µs."""
    by_slot = {}
    for k, slot, _, t in sorted(events, key=lambda e: e[3]):
        by_slot.setdefault(slot, []).append((k, t))
    lat = []
    for evs in by_slot.values():
        last_exit = None
        for k, t in evs:
            if k == "e":
                last_exit = t
            elif last_exit is not None:
                lat.append((t - last_exit) / 1000.0)
                last_exit = None
    return lat


def pct(values, q):
    v = sorted(values)
    return v[min(len(v) - 1, int(q * (len(v) - 1) + 0.5))]


# ---------------------------------------------------------------- the tools


class Tool:
    """One supervisor: writes its configuration for N workers into DIR and
    launches it (the driver's child, in the foreground)."""

    name = ""
    max_workers = 1 << 30
    note = ""

    def __init__(self, ctx):
        self.ctx = ctx

    def available(self):
        return True

    def launch(self, d, n, env):
        raise NotImplementedError

    def stop(self, proc):
        kill_everything()

    def service_dirs(self, d, n):
        scan = os.path.join(d, "service")
        os.mkdir(scan)
        for i in range(n):
            sd = os.path.join(scan, f"w{i:05d}")
            os.mkdir(sd)
            os.symlink(self.ctx.worker, os.path.join(sd, "run"))
        return scan


class Chip(Tool):
    name = "chip"

    def launch(self, d, n, env):
        spec = {
            "root": {
                "strategy": "one_for_one",
                "max_restarts": 1000000,
                "period": 1,
                "children": [{
                    "name": "w", "command": [self.ctx.worker], "instances": n,
                    "stdout": "null", "stderr": "null",
                }],
            }
        }
        path = os.path.join(d, "spec.json")
        with open(path, "w") as f:
            json.dump(spec, f)
        self.socket = os.path.join(d, "chipd.sock")
        err = open(os.path.join(d, "chipd.log"), "w")
        return subprocess.Popen([self.ctx.chipd, "--socket", self.socket, path],
                                env=env, stdout=err, stderr=err)

    def stop(self, proc):
        self.stop_s = stop_chipd(proc, self.socket)


def shm_prefix(socket_path):
    """src/common/names.cpp: "chip-" + FNV-1a 64 of the absolute socket path."""
    h = 0xcbf29ce484222325
    for b in os.path.normpath(os.path.abspath(socket_path)).encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"chip-{h:016x}-"


def cgroup_folder(socket_path):
    """The cgroup folder a chipd on SOCKET_PATH started by this driver makes
    (README, "Containment"): chip-<socket hash> in this driver's own cgroup
    v2; None without a cgroup2 mount."""
    try:
        with open("/proc/self/cgroup") as f:
            own = next((l[3:].strip() for l in f if l.startswith("0::")), None)
        with open("/proc/self/mountinfo") as f:
            mount = next((l.split()[4] for l in f if " - cgroup2 " in l and l.split()[3] == "/"), None)
    except OSError:
        return None
    if own is None or mount is None:
        return None
    return os.path.join(mount + own.rstrip("/"), shm_prefix(socket_path)[:-1])


def stop_chipd(proc, socket_path, grace_s=10):
    """SIGTERM (a clean shutdown removes the shared memory and the cgroups), a
    second one after GRACE_S, SIGKILL of everything 5 s later, then what a
    killed chipd leaves (its shared memory, its cgroups) removed by name.
    Returns the seconds chipd took to exit, None when it had to be killed."""
    took = None
    if proc.poll() is None:
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                log(f"bench: chipd did not stop in {grace_s + 5} s: killing its tree")
        if proc.poll() is not None:
            took = time.monotonic() - t0
    kill_everything()
    prefix = shm_prefix(socket_path)
    for f in os.listdir("/dev/shm"):
        if f.startswith(prefix):
            os.unlink(os.path.join("/dev/shm", f))
    folder = cgroup_folder(socket_path)
    if folder and os.path.isdir(folder):
        for dirpath, _, _ in os.walk(folder, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError as e:
                log(f"bench: cannot remove the cgroup {dirpath}: {e}")
    return took


class Supervisord(Tool):
    name = "supervisord"

    def available(self):
        return shutil.which("supervisord") is not None

    def launch(self, d, n, env):
        conf = os.path.join(d, "supervisord.conf")
        with open(conf, "w") as f:
            f.write(f"""[supervisord]
nodaemon=true
logfile={d}/supervisord.log
pidfile={d}/supervisord.pid
childlogdir={d}
minfds=1024
minprocs=200

[program:w]
command={self.ctx.worker} %(process_num)d
process_name=w_%(process_num)d
numprocs={n}
autorestart=true
startsecs=0
startretries=1000000
stdout_logfile=NONE
stderr_logfile=NONE
stopsignal=KILL
""")
        out = open(os.path.join(d, "stdout.log"), "w")
        return subprocess.Popen(["supervisord", "-c", conf], env=env, stdout=out, stderr=out)


class Runit(Tool):
    name = "runit"
    max_workers = 1000
    note = "runsvdir supervises at most 1,000 service directories"

    def available(self):
        return shutil.which("runsvdir") is not None

    def launch(self, d, n, env):
        scan = self.service_dirs(d, n)
        out = open(os.path.join(d, "stdout.log"), "w")
        return subprocess.Popen(["runsvdir", scan], env=env, stdout=out, stderr=out)


class S6(Tool):
    name = "s6"

    def available(self):
        return shutil.which("s6-svscan") is not None

    def launch(self, d, n, env):
        scan = self.service_dirs(d, n)
        for sd in os.listdir(scan):  # readiness: else s6-supervise waits 1 s per restart
            with open(os.path.join(scan, sd, "notification-fd"), "w") as f:
                f.write("3\n")
        env = dict(env, BENCH_NOTIFY_FD="3")
        out = open(os.path.join(d, "stdout.log"), "w")
        return subprocess.Popen(["s6-svscan", "-c", str(max(1000, 2 * n)), scan], env=env,
                                stdout=out, stderr=out)


class Daemontools(Tool):
    name = "daemontools"
    max_workers = 1000
    note = "svscan supervises at most 1,000 service directories"

    def available(self):
        return shutil.which("svscan") is not None and shutil.which("supervise") is not None

    def launch(self, d, n, env):
        scan = self.service_dirs(d, n)
        out = open(os.path.join(d, "stdout.log"), "w")
        return subprocess.Popen(["svscan", scan], env=env, stdout=out, stderr=out)


# ---------------------------------------------------------------- sessions


class Ctx:
    pass


def session(ctx, tool, n, life_ms=None, step_ms=0, run_s=None, idle_s=None, start_deadline_s=60):
    """Runs TOOL with N workers; returns a dict of what was measured."""
    d = tempfile.mkdtemp(prefix=f"chip-bench-{tool.name}-", dir="/tmp")
    logpath = os.path.join(d, "workers.log")
    open(logpath, "w").close()
    env = dict(os.environ, BENCH_LOG=logpath)
    env.pop("NOTIFY_SOCKET", None)
    if life_ms is not None:
        env["BENCH_LIFE_MS"] = str(life_ms)
        env["BENCH_STEP_MS"] = str(step_ms)
    res = {}
    proc = None
    try:
        t0 = now_ns()
        proc = tool.launch(d, n, env)
        ok = wait_lines(logpath, n, t0 + int(start_deadline_s * 1e9))
        if not ok:
            res["error"] = f"only {os.path.getsize(logpath) // LINE} of {n} workers started in {start_deadline_s} s"
            return res
        starts = [e[3] for e in read_log(logpath) if e[0] == "s"]
        res["start_s"] = (sorted(starts)[n - 1] - t0) / 1e9
        if life_ms is not None:
            time.sleep(max(0.0, run_s - (now_ns() - t0) / 1e9))
            res["memory"] = memory_kib(supervisor_pids(proc.pid, ctx.worker))
        else:
            time.sleep(1.0)  # let it settle (supervisord's startsecs, logs)
            pids = supervisor_pids(proc.pid, ctx.worker)
            res["memory"] = memory_kib(pids)
            res["procs"] = len(pids)
            if idle_s:
                a0 = activity(pids)
                time.sleep(idle_s)
                a1 = activity(pids)
                res["wakeups"] = a1[0] - a0[0]
                res["cpu_ms"] = (a1[1] - a0[1]) / 1e6
        if proc.poll() is not None:
            res["error"] = f"{tool.name} exited with {proc.returncode}"
    finally:
        if proc is not None:
            tool.stop(proc)
        else:
            kill_everything()
        if life_ms is not None and "error" not in res:
            res["latencies"] = restart_latencies(read_log(logpath))
        shutil.rmtree(d, ignore_errors=True)
    return res


def chipd_request(socket_path, req, timeout_s=300):
    """One request on chipd's control socket; its JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout_s)
        s.connect(socket_path)
        s.sendall((json.dumps(req) + "\n").encode())
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            if not chunk:
                raise OSError("chipd closed the connection")
            buf += chunk
    return json.loads(buf)


def cpu_ns(pid):
    """Time PID has run on a CPU, in ns (/proc/PID/schedstat: finer than stat's ticks)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def start_chipd(ctx, d, spec_path, env, deadline_s, options=()):
    """chipd (with OPTIONS) on SPEC_PATH with its socket and log in D; returns
    (process, socket path) once the socket exists (or DEADLINE_S passed)."""
    sock = os.path.join(d, "chipd.sock")
    err = open(os.path.join(d, "chipd.log"), "w")
    proc = subprocess.Popen([ctx.chipd, "--socket", sock, *options, spec_path], env=env, stdout=err, stderr=err)
    deadline = time.monotonic() + deadline_s
    while not os.path.exists(sock) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, sock


def live_session(ctx, n):
    """A reload of an N-worker spec in which one worker changed, and a pool
    scaled 0 -> 1,000 -> 0: chipd's CPU time and the wall time of each, and how
    many workers the reload restarted."""
    d = tempfile.mkdtemp(prefix="chip-bench-live-", dir="/tmp")
    logpath = os.path.join(d, "workers.log")
    open(logpath, "w").close()
    env = dict(os.environ, BENCH_LOG=logpath)
    env.pop("NOTIFY_SOCKET", None)
    quiet = {"stdout": "null", "stderr": "null"}
    children = [dict(name=f"w{i}", command=[ctx.worker], **quiet) for i in range(n)]
    children.append(dict(name="pool", command=[ctx.worker], instances=0, **quiet))
    spec = {"root": {"max_restarts": 1000000, "period": 1, "children": children}}
    first, second = os.path.join(d, "spec.json"), os.path.join(d, "spec2.json")
    with open(first, "w") as f:
        json.dump(spec, f)
    children[n // 2]["env"] = {"BENCH_CHANGED": "1"}
    with open(second, "w") as f:
        json.dump(spec, f)
    sock = os.path.join(d, "chipd.sock")
    res = {}
    proc = None
    try:
        proc, sock = start_chipd(ctx, d, first, env, 120)
        if chipd_request(sock, {"op": "wait", "path": "/", "timeout": 120}).get("ok") is not True:
            res["error"] = "the tree did not start"
            return res

        def pids():
            nodes = chipd_request(sock, {"op": "status"})["nodes"]
            return {x["path"]: x["pid"] for x in nodes if x["kind"] == "worker"}

        before = pids()
        c0, t0 = cpu_ns(proc.pid), time.monotonic()
        answer = chipd_request(sock, {"op": "reload", "spec": second})
        c1, t1 = cpu_ns(proc.pid), time.monotonic()
        if answer.get("ok") is not True:
            res["error"] = f"reload: {answer}"
            return res
        after = pids()
        res["reload_cpu_ms"] = (c1 - c0) / 1e6
        res["reload_wall_ms"] = (t1 - t0) * 1e3
        res["reload_restarted"] = sum(1 for p, pid in before.items() if after.get(p) != pid)
        res["reload_changes"] = len(answer.get("changes", []))
        for count, key in ((1000, "scale_up"), (0, "scale_down")):
            c0, t0 = cpu_ns(proc.pid), time.monotonic()
            answer = chipd_request(sock, {"op": "scale", "path": "pool", "count": count})
            c1, t1 = cpu_ns(proc.pid), time.monotonic()
            if answer.get("ok") is not True:
                res["error"] = f"scale to {count}: {answer}"
                return res
            res[key + "_cpu_ms"] = (c1 - c0) / 1e6
            res[key + "_wall_s"] = t1 - t0
    except (OSError, ValueError, KeyError) as e:
        res["error"] = f"live tree: {e}"
    finally:
        if proc is not None:
            stop_chipd(proc, sock)
        else:
            kill_everything()
        shutil.rmtree(d, ignore_errors=True)
    return res


def open_fds(pid):
    """What PID's descriptors are, by kind: "socket", "pipe", "/dev/null",
    "anon_inode:[eventfd]", ... -> how many."""
    kinds = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        kind = target.split(":[", 1)[0] if target.endswith("]") and ":[" in target else target
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def fds_changed(before, after):
    """"+N kind" / "-N kind" for every kind whose count changed."""
    out = []
    for k in sorted(set(before) | set(after)):
        d = after.get(k, 0) - before.get(k, 0)
        if d:
            out.append(f"{d:+d} {k}")
    return out


def numbered_lines(base):
    """Checks the numbered lines of tests/bench/line_writer.c in the log file
    BASE and its rotations (BASE.K, ..., BASE.1, BASE: oldest first):
    (lines, lost, repeated or out of order, malformed, files)."""
    files = []
    k = 1
    while os.path.exists(f"{base}.{k}"):
        files.append(f"{base}.{k}")
        k += 1
    files.reverse()
    files.append(base)
    lines = lost = disorder = bad = 0
    last = -1
    for path in files:
        with open(path, "rb") as f:
            for line in f:
                num = line[:10]
                if len(num) != 10 or not num.isdigit() or not line.endswith(b"\n"):
                    bad += 1
                    continue
                v = int(num)
                lines += 1
                if v > last + 1:
                    lost += v - last - 1
                elif v <= last:
                    disorder += 1
                last = max(last, v)
    return lines, lost, disorder, bad, len(files)


def answer_times(sock, req, stop, out):
    """Sends REQ on a fresh connection to SOCK, again and again until STOP is
    set; appends (CLOCK_MONOTONIC ns, True) for every answer that is ok and
    (ns, False) for every failure (refused, closed, not ok)."""
    line = (json.dumps(req) + "\n").encode()
    while not stop.is_set():
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(30)
                s.connect(sock)
                s.sendall(line)
                buf = b""
                while not buf.endswith(b"\n"):
                    chunk = s.recv(1 << 16)
                    if not chunk:
                        raise OSError("chipd closed the connection")
                    buf += chunk
            out.append((now_ns(), json.loads(buf).get("ok") is True))
        except (OSError, ValueError):
            out.append((now_ns(), False))
            time.sleep(0.0005)


def reexec_session(ctx, n, reexecs, writers=4, cgroups=True):
    """N sleeping workers (a worker "probe" and a pool of N - 1) and WRITERS
    line_writers (a line every ms to rotated log files, 16 KiB each), all
    started; then REEXECS reexecs, one after the other, while a thread sends
    `status probe` on fresh connections as fast as it is answered: per reexec
    the longest time between two answers around it and its own round trip;
    then the workers' pids and restart counts against those before, chipd's
    open descriptors before and after, and the writers' lines after chipd
    stopped (every number there, none lost or repeated)."""
    d = tempfile.mkdtemp(prefix="chip-bench-reexec-", dir="/tmp")
    logs = os.path.join(d, "logs")
    os.mkdir(logs, 0o755)
    env = dict(os.environ, BENCH_LOG=os.path.join(d, "workers.log"))
    env.pop("NOTIFY_SOCKET", None)
    open(env["BENCH_LOG"], "w").close()
    quiet = {"stdout": "null", "stderr": "null"}
    spec = {"root": {"max_restarts": 1000000, "period": 1, "children": [
        dict(name="probe", command=[ctx.worker], **quiet),
        dict(name="writer", command=[ctx.line_writer, "1000"], instances=writers, stderr="null",
             stdout={"file": os.path.join(logs, "{name}.{instance}.log"), "max_bytes": 16384, "keep": 1000}),
        dict(name="sleeper", command=[ctx.worker], instances=n - 1, **quiet),
    ]}}
    path = os.path.join(d, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    res = {"load_before": os.getloadavg()[0]}
    proc = sock = None
    stop = threading.Event()
    poller = None
    try:
        t0 = time.monotonic()
        proc, sock = start_chipd(ctx, d, path, env, 120, () if cgroups else ("--no-cgroups",))
        if chipd_request(sock, {"op": "wait", "path": "/", "timeout": 300}).get("ok") is not True:
            res["error"] = "reexec: the tree did not start"
            return res
        res["start_s"] = time.monotonic() - t0
        probe = {"op": "status", "path": "probe"}
        res["in_cgroups"] = bool(chipd_request(sock, probe)["nodes"][0].get("cgroup"))
        log(f"bench: reexec: {n + writers} workers started in {res['start_s']:.1f} s, "
            f"{'each in its cgroup' if res['in_cgroups'] else 'without cgroups'}")

        def workers():
            nodes = chipd_request(sock, {"op": "status"})["nodes"]
            return {x["path"]: (x["pid"], x["restarts"]) for x in nodes if x["kind"] == "worker"}

        # The writers' pipes filled while chipd started 10,000 workers: it
        # catches up before anything is measured.
        time.sleep(2)
        before = workers()
        res["workers"] = len(before)
        fds_before = open_fds(proc.pid)
        res["fds_before"] = sum(fds_before.values())
        c0, t0 = cpu_ns(proc.pid), time.monotonic()
        for _ in range(20):
            chipd_request(sock, probe)
        res["probe_us"] = (time.monotonic() - t0) / 20 * 1e6
        res["probe_cpu_us"] = (cpu_ns(proc.pid) - c0) / 20 / 1e3
        res["gap_ms"], res["roundtrip_ms"], res["idle_gap_ms"], res["failed"] = [], [], [], 0
        res["fds"] = []
        for i in range(reexecs):
            answers = []
            stop.clear()
            poller = threading.Thread(target=answer_times, args=(sock, probe, stop, answers), daemon=True)
            poller.start()
            time.sleep(0.5)
            a = now_ns()
            reply = chipd_request(sock, {"op": "reexec"}, timeout_s=60)
            b = now_ns()
            time.sleep(0.5)
            stop.set()
            poller.join(30)
            poller = None
            if reply.get("ok") is not True:
                res["error"] = f"reexec {i + 1}: {reply}"
                return res
            if proc.poll() is not None:
                res["error"] = f"reexec {i + 1}: chipd exited with {proc.returncode}"
                return res
            ok = [t for t, good in answers if good]
            res["failed"] += sum(1 for _, good in answers if not good)
            spans = [(x, y) for x, y in zip(ok, ok[1:]) if y > a and x < b]
            if not spans:
                res["error"] = f"reexec {i + 1}: no answer before and after it"
                return res
            res["gap_ms"].append(max(y - x for x, y in spans) / 1e6)
            res["roundtrip_ms"].append((b - a) / 1e6)
            idle = [y - x for x, y in zip(ok, ok[1:]) if y <= a]
            res["idle_gap_ms"].append(max(idle, default=0) / 1e6)
            res["version"] = reply.get("version")
            res["fds"].append(sum(open_fds(proc.pid).values()))
            log(f"bench: reexec {i + 1}/{reexecs}: unanswered {res['gap_ms'][-1]:.1f} ms, "
                f"round trip {res['roundtrip_ms'][-1]:.1f} ms, {len(answers)} probes, fds {res['fds'][-1]}")
        fds_after = open_fds(proc.pid)
        res["fds_after"] = sum(fds_after.values())
        res["fds_changed"] = fds_changed(fds_before, fds_after)
        after = workers()
        res["restarted"] = sum(1 for p, v in before.items() if after.get(p) != v)
        res["missing"] = sum(1 for p in before if p not in after)
        # chipd's event log: "TIME chipd: reexec: executing ..." by the old
        # process, "TIME chipd: reexec: chipd V took over N workers" by the new.
        execs, took = [], []
        with open(os.path.join(d, "chipd.log")) as f:
            for line in f:
                if " reexec: " not in line:
                    continue
                try:
                    t = datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()
                except ValueError:
                    continue
                if "executing" in line:
                    execs.append(t)
                elif "took over" in line:
                    took.append(t)
        res["took_over_lines"] = len(took)
        res["exec_to_took_over_ms"] = [(b - a) * 1e3 for a, b in zip(execs, took)]
        res["load_after"] = os.getloadavg()[0]
        # The writers are stopped first, then chipd: what is left in the pipes is written.
        if chipd_request(sock, {"op": "stop", "path": "writer"}).get("ok") is not True:
            res["error"] = "reexec: the writers did not stop"
            return res
    except (OSError, ValueError, KeyError) as e:
        res["error"] = f"reexec: {e}"
    finally:
        stop.set()
        if poller is not None:
            poller.join(30)
        if proc is not None:
            res["stop_s"] = stop_chipd(proc, sock, grace_s=60)
        else:
            kill_everything()
        if "error" not in res:
            counts = [numbered_lines(os.path.join(logs, f"writer.{i}.log")) for i in range(writers)]
            res["lines"] = sum(c[0] for c in counts)
            res["lost"] = sum(c[1] for c in counts)
            res["disorder"] = sum(c[2] for c in counts)
            res["malformed"] = sum(c[3] for c in counts)
            res["log_files"] = sum(c[4] for c in counts)
        else:
            try:
                with open(os.path.join(d, "chipd.log")) as f:
                    log("bench: reexec: chipd's log:\n" + f.read()[-2000:])
            except OSError:
                pass
        shutil.rmtree(d, ignore_errors=True)
    return res



def events_session(ctx, subscribers, run_s, slots=24):
    """A crash loop of SLOTS workers (each exits at once, restarted at once) for
    RUN_S seconds with SUBSCRIBERS event-stream clients reading everything: the
    events chipd made (3 per crash: start, exit, restart; counted from the
    workers' start lines), chipd's CPU time per event, and the lines each
    subscriber got."""
    d = tempfile.mkdtemp(prefix="chip-bench-events-", dir="/tmp")
    logpath = os.path.join(d, "workers.log")
    open(logpath, "w").close()
    env = dict(os.environ, BENCH_LOG=logpath, BENCH_LIFE_MS="50", BENCH_STEP_MS="0")
    env.pop("NOTIFY_SOCKET", None)
    spec = {"root": {"max_restarts": 1000000, "period": 1, "children": [
        {"name": "w", "command": [ctx.worker], "instances": 0, "stdout": "null", "stderr": "null"}]}}
    path = os.path.join(d, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    sock = os.path.join(d, "chipd.sock")
    res = {}
    proc = None
    subs = []
    try:
        proc, sock = start_chipd(ctx, d, path, env, 30)
        for _ in range(subscribers):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            s.sendall(b'{"op": "events"}\n')
            first = b""
            while not first.endswith(b"\n"):
                chunk = s.recv(1)
                if not chunk:
                    raise OSError("chipd closed an event stream")
                first += chunk
            if json.loads(first).get("ok") is not True:
                raise OSError(f"events: {first!r}")
            s.setblocking(False)
            subs.append(s)
        # The loop begins once everyone has subscribed: a crash loop this fast
        # keeps chipd from answering requests promptly. The scale's answer is
        # not waited for (it would come only once the workers are up).
        scaler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        scaler.connect(sock)
        scaler.sendall((json.dumps({"op": "scale", "path": "w", "count": slots}) + "\n").encode())
        subs.append(scaler)
        lines = [0] * len(subs)
        stop = threading.Event()

        def read_all():
            # One thread reads every subscriber, as fast as it can.
            sel = selectors.DefaultSelector()
            for i, s in enumerate(subs):
                sel.register(s, selectors.EVENT_READ, i)
            while not stop.is_set():
                for key, _ in sel.select(0.1):
                    try:
                        chunk = key.fileobj.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    lines[key.data] += chunk.count(b"\n")

        reader = threading.Thread(target=read_all, daemon=True)
        reader.start()
        time.sleep(0.5)  # the loop under way
        size0, got0 = os.path.getsize(logpath), list(lines)
        c0, t0 = cpu_ns(proc.pid), time.monotonic()
        time.sleep(run_s)
        c1, t1 = cpu_ns(proc.pid), time.monotonic()
        size1, got1 = os.path.getsize(logpath), list(lines)
        stop.set()
        reader.join()
        with open(logpath, "rb") as f:
            f.seek(size0)
            window = f.read(size1 - size0)
        starts = sum(1 for l in window.split(b"\n") if l.startswith(b"s "))
        events = 3 * starts
        if not events:
            res["error"] = f"events, {subscribers} subscribers: no crash seen"
            return res
        res["events_per_s"] = events / (t1 - t0)
        res["cpu_us_per_event"] = (c1 - c0) / 1e3 / events
        if subscribers:
            res["received_per_s"] = min(b - a for a, b in zip(got0[:-1], got1[:-1])) / (t1 - t0)
    except (OSError, ValueError) as e:
        res["error"] = f"events, {subscribers} subscribers: {e}"
    finally:
        for s in subs:
            s.close()
        if proc is not None:
            stop_chipd(proc, sock)
        else:
            kill_everything()
        shutil.rmtree(d, ignore_errors=True)
    return res


def bare_session(ctx, slots, life_ms, step_ms, run_s):
    d = tempfile.mkdtemp(prefix="chip-bench-bare-", dir="/tmp")
    logpath = os.path.join(d, "workers.log")
    open(logpath, "w").close()
    env = dict(os.environ, BENCH_LOG=logpath, BENCH_LIFE_MS=str(life_ms), BENCH_STEP_MS=str(step_ms))
    try:
        subprocess.run([ctx.bare_loop, ctx.worker, str(slots), str(int(run_s))], env=env,
                       timeout=run_s + 10, check=True)
    finally:
        kill_everything()
    lat = restart_latencies(read_log(logpath))
    shutil.rmtree(d, ignore_errors=True)
    return {"latencies": lat}


def registry_session(ctx, scale):
    d = tempfile.mkdtemp(prefix="chip-bench-registry-", dir="/tmp")
    out = os.path.join(d, "out.json")
    spec = {
        "registries": [{"name": "bench", "max_groups": 64, "max_members": 4096}],
        "root": {"children": [{
            "name": "bench", "command": [ctx.registry_bench, out, str(scale)],
            "restart": "temporary",
        }]},
    }
    path = os.path.join(d, "spec.json")
    with open(path, "w") as f:
        json.dump(spec, f)
    sock = os.path.join(d, "chipd.sock")
    err = open(os.path.join(d, "chipd.log"), "w")
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    proc = subprocess.Popen([ctx.chipd, "--socket", sock, path], env=env, stdout=err, stderr=err)
    res = None
    try:
        deadline = now_ns() + int(120e9)
        while now_ns() < deadline and res is None:
            time.sleep(0.05)
            try:
                with open(out) as f:
                    text = f.read()
                if text.endswith("}\n"):
                    res = json.loads(text)
            except (OSError, ValueError):
                pass
            if proc.poll() is not None:
                break
    finally:
        stop_chipd(proc, sock)
    if res is None:
        with open(os.path.join(d, "chipd.log")) as f:
            log("bench: registry benchmark failed; chipd's log:\n" + f.read()[-2000:])
    shutil.rmtree(d, ignore_errors=True)
    return res


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def etcd_answers(port):
    """Whether etcd's v3 JSON gateway on PORT answers a range request."""
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v3/kv/range", data=b'{"key":"AA=="}',
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return b"header" in r.read()
    except OSError:
        return False


def etcd_put_ms(port, n):
    """p50 of N puts to etcd's v3 JSON gateway over one kept-alive connection,
    in ms: the floor of a membership reaching etcd (one commit, its fsync)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    try:
        for i in range(n):
            body = json.dumps({"key": "Zmxvb3I=", "value": base64.b64encode(str(i).encode()).decode()})  # "floor"
            t0 = time.monotonic_ns()
            conn.request("POST", "/v3/kv/put", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            if b'"revision"' not in r.read():
                raise OSError("etcd refused a put")
            times.append((time.monotonic_ns() - t0) / 1e6)
    finally:
        conn.close()
    return pct(times, 0.5)


def etcd_watch_ms(port, n):
    """p50 of put -> its event on a watch stream of the JSON gateway, in ms
    (both by this driver, one connection each): the floor of a membership on
    one host reaching another's chipd through etcd."""
    import http.client
    watch = socket.create_connection(("127.0.0.1", port), timeout=10)
    put = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    times = []
    try:
        body = json.dumps({"create_request": {"key": "d2F0Y2g="}}).encode()  # "watch"
        watch.sendall(b"POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                      b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        buf = b""
        while b'"created":true' not in buf:
            chunk = watch.recv(65536)
            if not chunk:
                raise OSError("etcd closed the watch")
            buf += chunk
        for i in range(n):
            t0 = time.monotonic_ns()
            put.request("POST", "/v3/kv/put", json.dumps({"key": "d2F0Y2g=", "value": base64.b64encode(str(i).encode()).decode()}),
                        {"Content-Type": "application/json"})
            if b'"revision"' not in put.getresponse().read():
                raise OSError("etcd refused a put")
            buf = b""
            while b'"events"' not in buf:
                chunk = watch.recv(65536)
                if not chunk:
                    raise OSError("etcd closed the watch")
                buf += chunk
            times.append((time.monotonic_ns() - t0) / 1e6)
    finally:
        watch.close()
        put.close()
    return pct(times, 0.5)


def cluster_session(ctx, n_rounds):
    """Two chipds (hosts a and b, lease_ttl 2) on one etcd on loopback ports
    with its own data folder: join on a -> seen in b's cluster view over
    N_ROUNDS join/leave rounds (cluster_bench, a worker of a), then chipd a
    killed with SIGKILL and the time until its members leave b's view."""
    d = tempfile.mkdtemp(prefix="chip-bench-cluster-", dir="/tmp")
    res = {}
    etcd = pa = pb = None
    sock_a = sock_b = None
    left_shm = []
    env = dict(os.environ)
    env.pop("NOTIFY_SOCKET", None)
    try:
        client, peer = free_port(), free_port()
        url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
        etcd = subprocess.Popen(
            [ctx.etcd, "--name", "bench", "--data-dir", os.path.join(d, "etcd-data"),
             "--listen-client-urls", url, "--advertise-client-urls", url,
             "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
             "--initial-cluster", f"bench={peer_url}", "--log-level", "error"],
            stdout=open(os.path.join(d, "etcd.log"), "w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not etcd_answers(client):
            if etcd.poll() is not None or time.monotonic() > deadline:
                res["error"] = "cluster: etcd did not serve in 30 s"
                return res
            time.sleep(0.05)
        res["etcd_put_ms_p50"] = etcd_put_ms(client, n_rounds)
        res["etcd_watch_ms_p50"] = etcd_watch_ms(client, n_rounds)
        out = os.path.join(d, "rounds.json")

        def host(node, children):
            hd = os.path.join(d, node)
            os.mkdir(hd)
            spec = {"registries": ["bench"],
                    "cluster": {"etcd": [url], "name": "bench", "node": node, "lease_ttl": 2},
                    "root": {"children": children}}
            path = os.path.join(hd, "spec.json")
            with open(path, "w") as f:
                json.dump(spec, f)
            return start_chipd(ctx, hd, path, env, 30)

        pb, sock_b = host("b", [])
        pa, sock_a = host("a", [{"name": "bench", "restart": "temporary",
                                 "command": [ctx.cluster_bench, "rounds", out, sock_b, str(n_rounds)]}])
        deadline = time.monotonic() + 300
        while not os.path.exists(out):
            if pa.poll() is not None or pb.poll() is not None or time.monotonic() > deadline:
                res["error"] = "cluster: the join/leave rounds did not finish"
                return res
            time.sleep(0.1)
        with open(out) as f:
            res.update(json.load(f))
        if "error" in res:
            return res
        # A killed chipd leaves its regions behind: removed below, by name.
        for reg in chipd_request(sock_a, {"op": "registries"}).get("registries", []):
            if reg.get("shm"):
                left_shm += [reg["shm"], reg["shm"] + "@cluster"]
        out = os.path.join(d, "expire.json")
        r = subprocess.run([ctx.cluster_bench, "expire", out, sock_b, str(pa.pid), "a"], timeout=60)
        pa.wait(10)
        with open(out) as f:
            res.update(json.load(f))
        if r.returncode != 0 and "error" not in res:
            res["error"] = "cluster: the expiry was not measured"
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        res["error"] = f"cluster: {e}"
    finally:
        if "error" in res:
            for name in ("a/chipd.log", "b/chipd.log", "etcd.log"):
                try:
                    with open(os.path.join(d, name)) as f:
                        log(f"bench: {name}:\n" + f.read()[-1500:])
                except OSError:
                    pass
        # b first (a clean exit revokes its lease on etcd), then etcd, by pid.
        for proc in (pb, pa, etcd):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    pass
        kill_everything()
        for f in left_shm:
            try:
                os.unlink(f)
            except OSError:
                pass
        shutil.rmtree(d, ignore_errors=True)
    return res


# ---------------------------------------------------------------- the report


def fmt(v, digits=3):
    if v is None:
        return "—"
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


class Report:
    """Rows of (measurement, tool, per-run values, unit, lower_is_better)."""

    def __init__(self):
        self.rows = []  # (measurement, unit, {tool: [values]}, note)
        self.notes = []

    def add(self, measurement, unit, values, note=""):
        self.rows.append((measurement, unit, values, note))

    def table(self):
        out = ["| measurement | tool | median | spread (min–max of runs) | runs | chip ÷ tool |",
               "| --- | --- | ---: | ---: | ---: | ---: |"]
        for measurement, unit, values, note in self.rows:
            chip = values.get("chip")
            chip_med = statistics.median(chip) if chip else None
            first = True
            for tool, vals in values.items():
                label = f"{measurement} ({unit})" if first else ""
                first = False
                if not vals:
                    out.append(f"| {label} | {tool} | {note or '—'} | | 0 | |")
                    continue
                med = statistics.median(vals)
                spread = f"{fmt(min(vals))}–{fmt(max(vals))}" if len(vals) > 1 else ""
                ratio = ""
                if tool != "chip" and chip_med is not None:
                    if med:
                        ratio = f"{chip_med / med:.2g}" if chip_med / med < 0.1 else f"{chip_med / med:.2f}"
                    else:
                        ratio = "both 0" if chip_med == 0 else "∞"
                out.append(f"| {label} | {tool} | {fmt(med)} | {spread} | {len(vals)} | {ratio} |")
        return "\n".join(out)


def median_of(values):
    return statistics.median(values) if values else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about a minute: one run of each, 3 s idle")
    ap.add_argument("--bin", required=True, help="folder of worker, bare_loop, registry_bench, cluster_bench, line_writer")
    ap.add_argument("--chipd", required=True)
    ap.add_argument("--out", help="write the Markdown report here")
    ap.add_argument("--tools", default="chip,supervisord,runit,s6,daemontools")
    parts = ["restart", "start", "big", "registry", "live", "reexec", "events", "cluster"]
    ap.add_argument("--skip", default="", help="comma list of: " + ",".join(parts))
    ap.add_argument("--only", default="", help="comma list of the parts to run (the others skipped)")
    ap.add_argument("--etcd", default=shutil.which("etcd") or "/usr/bin/etcd",
                    help="etcd for the cluster part (Debian etcd-server)")
    args = ap.parse_args()

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")

    def on_signal(sig, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)

    ctx = Ctx()
    ctx.worker = os.path.realpath(os.path.join(args.bin, "worker"))
    ctx.bare_loop = os.path.join(args.bin, "bare_loop")
    ctx.registry_bench = os.path.realpath(os.path.join(args.bin, "registry_bench"))
    ctx.chipd = os.path.realpath(args.chipd)
    ctx.cluster_bench = os.path.realpath(os.path.join(args.bin, "cluster_bench"))
    ctx.line_writer = os.path.realpath(os.path.join(args.bin, "line_writer"))
    ctx.etcd = args.etcd
    wanted = args.tools.split(",")
    skip = set(filter(None, args.skip.split(",")))
    if args.only:
        only = set(filter(None, args.only.split(",")))
        skip |= set(parts) - only
    tools = [cls(ctx) for cls in (Chip, Supervisord, Runit, S6, Daemontools)
             if cls.name in wanted]
    missing = [t.name for t in tools if not t.available()]
    tools = [t for t in tools if t.available()]
    quick = args.quick

    reps = 1 if quick else 3
    slots, life_ms, step_ms = 24, 1250, 25
    run_s = 6 if quick else 7
    idle_s = 3 if quick else 10
    n_start, n_big = 1000, 10000
    began = time.monotonic()

    rep = Report()
    names = ["bare loop"] + [t.name for t in tools]
    lat = {n: [] for n in names}  # pooled
    lat_p50 = {n: [] for n in names}
    lat_p99 = {n: [] for n in names}
    lat_max = {n: [] for n in names}
    small_pss = {t.name: [] for t in tools}
    start = {t.name: [] for t in tools}
    rss1k = {t.name: [] for t in tools}
    pss1k = {t.name: [] for t in tools}
    procs1k = {}
    wake = {t.name: [] for t in tools}
    cpu = {t.name: [] for t in tools}
    errors = []
    try:
        if "restart" not in skip:
            for r in range(reps):
                for name in names:
                    log(f"bench: restart latency, run {r + 1}/{reps}: {name}")
                    if name == "bare loop":
                        res = bare_session(ctx, slots, life_ms, step_ms, run_s)
                    else:
                        tool = next(t for t in tools if t.name == name)
                        res = session(ctx, tool, slots, life_ms=life_ms, step_ms=step_ms, run_s=run_s)
                        if "memory" in res:
                            small_pss[name].append(res["memory"][1])
                    if "error" in res:
                        errors.append(f"restart latency, {name}: {res['error']}")
                        continue
                    ls = res["latencies"]
                    if not ls:
                        errors.append(f"restart latency, {name}: no restart seen")
                        continue
                    lat[name] += ls
                    lat_p50[name].append(pct(ls, 0.5) / 1000)
                    lat_p99[name].append(pct(ls, 0.99) / 1000)
                    lat_max[name].append(max(ls) / 1000)

        if "start" not in skip:
            for r in range(reps):
                for tool in tools:
                    log(f"bench: start {n_start}, memory, idle {idle_s} s, run {r + 1}/{reps}: {tool.name}")
                    res = session(ctx, tool, n_start, idle_s=idle_s)
                    if "start_s" in res:
                        start[tool.name].append(res["start_s"])
                    if "error" in res:
                        errors.append(f"start {n_start}, {tool.name}: {res['error']}")
                        continue
                    rss1k[tool.name].append(res["memory"][0] / 1024)
                    pss1k[tool.name].append(res["memory"][1] / 1024)
                    procs1k[tool.name] = res["procs"]
                    wake[tool.name].append(res["wakeups"])
                    cpu[tool.name].append(res["cpu_ms"])

        big = {}
        big_start = {}
        big_skipped = {}
        if "big" not in skip:
            for tool in tools:
                if tool.max_workers < n_big:
                    big_skipped[tool.name] = tool.note
                    continue
                if quick and tool.name != "chip":
                    big_skipped[tool.name] = "not in --quick"
                    continue
                if tool.name == "supervisord":
                    big_skipped[tool.name] = "not run: ~5 s per 1,000 workers would take most of the time budget"
                    continue
                log(f"bench: {n_big} workers, memory: {tool.name}")
                res = session(ctx, tool, n_big, start_deadline_s=120)
                if "error" in res:
                    errors.append(f"{n_big} workers, {tool.name}: {res['error']}")
                    big_skipped[tool.name] = res["error"]
                    continue
                big[tool.name] = res["memory"]
                if tool.name == "chip":
                    took = getattr(tool, "stop_s", None)
                    big_skipped["chip (shutdown)"] = (
                        f"SIGTERM to exit took {took:.1f} s" if took is not None else
                        "chipd had not exited 15 s after SIGTERM (a second SIGTERM after 10 s): killed")
                big_start[tool.name] = res["start_s"]

        registry = []
        if "registry" not in skip and any(t.name == "chip" for t in tools):
            for r in range(reps):
                log(f"bench: registry, run {r + 1}/{reps}")
                res = registry_session(ctx, 0.25 if quick else 1.0)
                if res is None:
                    errors.append("registry: the benchmark did not finish")
                else:
                    registry.append(res)
        live = []
        if "live" not in skip and any(t.name == "chip" for t in tools):
            for r in range(reps):
                log(f"bench: live tree ({n_big} workers: reload one changed; a pool 0 -> 1000 -> 0), "
                    f"run {r + 1}/{reps}")
                res = live_session(ctx, n_big)
                if "error" in res:
                    errors.append(res["error"])
                else:
                    live.append(res)
        reexec = []
        if "reexec" not in skip and any(t.name == "chip" for t in tools):
            # With cgroups (chipd's default where it can write them) and, in a
            # full run, without: their start differs, and what is handed over.
            n_reexecs = 3 if quick else 5
            for cgroups in (True,) if quick else (True, False):
                log(f"bench: reexec ({n_big} sleeping workers, 4 writing lines, "
                    f"{'cgroups' if cgroups else '--no-cgroups'}), {n_reexecs} reexecs")
                res = reexec_session(ctx, n_big, n_reexecs, cgroups=cgroups)
                if "error" in res:
                    errors.append(res["error"])
                else:
                    reexec.append(res)
        events = {}
        if "events" not in skip and any(t.name == "chip" for t in tools):
            for r in range(reps):
                for n in (0, 1, 10):
                    log(f"bench: event stream, crash loop of {slots}, {n} subscribers, run {r + 1}/{reps}")
                    res = events_session(ctx, n, 3 if quick else 5, slots)
                    if "error" in res:
                        errors.append(res["error"])
                    else:
                        events.setdefault(n, []).append(res)
        cluster = []
        cluster_missing = None
        if "cluster" not in skip and any(t.name == "chip" for t in tools):
            if not os.access(ctx.etcd, os.X_OK):
                cluster_missing = f"etcd ({ctx.etcd}) is not installed"
            for r in range(reps if cluster_missing is None else 0):
                log(f"bench: cluster (loopback etcd, 2 chipds), run {r + 1}/{reps}")
                res = cluster_session(ctx, 100 if quick else 300)
                if "error" in res:
                    errors.append(res["error"])
                else:
                    cluster.append(res)
    except KeyboardInterrupt:
        log("bench: interrupted; stopping everything")
        kill_everything()
        return 130
    finally:
        kill_everything()

    # ---- the table
    def vals(d):
        return {k: v for k, v in d.items()}

    if any(lat.values()):
        counts = ", ".join(f"{k} {len(v)}" for k, v in lat.items())
        rep.add("restart latency p50", "ms", vals(lat_p50))
        rep.add("restart latency p99", "ms", vals(lat_p99))
        rep.add("restart latency max", "ms", vals(lat_max))
        rep.notes.append(f"Restarts measured per tool (all runs): {counts}. {slots} workers side by side, "
                         f"each living {life_ms}–{life_ms + (slots - 1) * step_ms} ms, {run_s} s per run; "
                         "p50/p99/max per run, the table shows their median and range over runs.")
    if any(start.values()):
        rep.add(f"start {n_start:,} workers", "s", vals(start))
        rep.add(f"RSS at {n_start:,}", "MiB", vals(rss1k))
        rep.add(f"PSS at {n_start:,}", "MiB", vals(pss1k))
        per = {}
        for name in pss1k:
            if pss1k[name] and small_pss.get(name):
                per[name] = [(statistics.median(pss1k[name]) * 1024 - statistics.median(small_pss[name]))
                             / (n_start - slots)]
            else:
                per[name] = []
        rep.add("PSS per added worker", "KiB", per)
        rep.add(f"idle wakeups over {idle_s} s", "count", vals(wake))
        rep.add(f"idle CPU over {idle_s} s", "ms", vals(cpu))
        rep.notes.append("Memory and idle count the supervisor's own processes, not the workers: " +
                         ", ".join(f"{k} {v} process{'es' if v > 1 else ''}" for k, v in procs1k.items()) +
                         f" at {n_start:,} workers. PSS per added worker = (PSS at {n_start:,} − PSS at {slots}"
                         f" (the restart runs)) / {n_start - slots}.")
    if big:
        rep.add(f"PSS at {n_big:,}", "MiB", {k: [v[1] / 1024] for k, v in big.items()})
        rep.add(f"RSS at {n_big:,}", "MiB", {k: [v[0] / 1024] for k, v in big.items()})
        rep.add(f"start {n_big:,} workers", "s", {k: [v] for k, v in big_start.items()})
        if "chip" in big and pss1k.get("chip"):
            rep.add(f"chip PSS per added worker, {n_start:,}→{n_big:,}", "KiB",
                    {"chip": [(big["chip"][1] - statistics.median(pss1k["chip"]) * 1024) / (n_big - n_start)]})
        for k, why in big_skipped.items():
            rep.notes.append(f"{n_big:,} workers, {k}: {why}.")
    if registry:
        def reg(key):
            return {"chip": [r[key] for r in registry]}
        rep.add("chip_members, 1 member", "ns/op", reg("members_ns_1"))
        rep.add("chip_members, 16 members", "ns/op", reg("members_ns_16"))
        rep.add("chip_members, 256 members", "ns/op", reg("members_ns_256"))
        rep.add("chip_join round trip p50", "µs", reg("join_us_p50"))
        rep.add("chip_join round trip p99", "µs", reg("join_us_p99"))
        rep.add("(floor) 1-byte Unix socket ping-pong p50", "µs", reg("socket_floor_us_p50"))
        rep.add("chip_leave round trip p50", "µs", reg("leave_us_p50"))
        rep.add("chip_leave round trip p99", "µs", reg("leave_us_p99"))
        rep.add("join+leave from 1 client", "ops/s", reg("ops_1"))
        rep.add("join+leave from 8 clients", "ops/s", reg("ops_8"))
        rep.add("member death → removed p50", "µs", reg("death_us_p50"))
        rep.add("member death → removed max", "µs", reg("death_us_max"))
        rep.notes.append(f"Registry: {registry[0]['roundtrips']:,} join/leave round trips and "
                         f"{registry[0]['death_trials']} deaths per run (registry_bench, a worker of chipd).")

    if live:
        def lv(key):
            return {"chip": [r[key] for r in live]}
        rep.add(f"reload of {n_big:,} workers, 1 changed: chipd CPU", "ms", lv("reload_cpu_ms"))
        rep.add(f"reload of {n_big:,} workers, 1 changed: wall", "ms", lv("reload_wall_ms"))
        rep.add("reload: workers restarted", "count", lv("reload_restarted"))
        rep.add("scale a pool 0 → 1,000: chipd CPU", "ms", lv("scale_up_cpu_ms"))
        rep.add("scale a pool 0 → 1,000: wall", "s", lv("scale_up_wall_s"))
        rep.add("scale a pool 1,000 → 0: chipd CPU", "ms", lv("scale_down_cpu_ms"))
        rep.add("scale a pool 1,000 → 0: wall", "s", lv("scale_down_wall_s"))
        rep.notes.append(f"Live tree: a spec of {n_big:,} single workers and an empty pool; the reload's "
                         "new spec differs in one worker's env. CPU is chipd's (from /proc/PID/schedstat) "
                         "from sending the request to its answer, which comes once the changed worker runs "
                         "again; it includes loading and checking the new spec and the diff of the whole tree.")

    for rx in reexec:
        mode = "in cgroups" if rx["in_cgroups"] else "without cgroups"
        rep.add(f"reexec, {n_big:,} workers {mode}: control socket unanswered", "ms", {"chip": rx["gap_ms"]})
        rep.add(f"reexec, {n_big:,} workers {mode}: its request's round trip", "ms", {"chip": rx["roundtrip_ms"]})
        rep.add(f"reexec, {mode}: (floor) longest time between two answers without a reexec", "ms",
                {"chip": rx["idle_gap_ms"]})
        if rx["exec_to_took_over_ms"]:
            rep.add(f"reexec, {mode}: `executing` → `took over` in chipd's log", "ms",
                    {"chip": rx["exec_to_took_over_ms"]})
        rep.add(f"reexec, {mode}: workers restarted", "count", {"chip": [rx["restarted"]]})
        rep.add(f"reexec, {mode}: log lines lost", "count", {"chip": [rx["lost"]]})
        rep.add(f"reexec, {mode}: chipd's open descriptors before", "count", {"chip": [rx["fds_before"]]})
        rep.add(f"reexec, {mode}: chipd's open descriptors after", "count", {"chip": [rx["fds_after"]]})
        rep.notes.append(
            f"Reexec, {mode}: {n_big:,} sleeping workers and 4 `line_writer`s (a numbered line every ms "
            f"each, to log files of 16 KiB, rotated), started in {rx['start_s']:.1f} s; "
            f"{len(rx['gap_ms'])} reexecs one after the other (the rows' runs), while a thread sent "
            "`{\"op\": \"status\", \"path\": \"probe\"}` on a fresh connection as soon as the previous "
            f"one was answered ({rx['probe_us']:.0f} µs a request, {rx['probe_cpu_us']:.0f} µs of chipd's CPU, "
            "measured before the reexecs). Unanswered = the longest time between two consecutive answers "
            "around the reexec's request; the floor is the same over the 0.5 s before it. "
            f"{rx['failed']} probe connection{'' if rx['failed'] == 1 else 's'} failed. Restarted: workers of {rx['workers']:,} whose pid "
            f"or restart count changed ({rx['missing']} missing); lines: {rx['lines']:,} in "
            f"{rx['log_files']} files, read after chipd stopped ({rx['disorder']} repeated or out of "
            f"order, {rx['malformed']} malformed); chipd logged {rx['took_over_lines']} `took over` lines; "
            f"descriptors after each reexec: {', '.join(str(x) for x in rx['fds'])}"
            f"{' (' + ', '.join(rx['fds_changed']) + ')' if rx['fds_changed'] else ''}. "
            f"Then the writers were stopped and chipd got SIGTERM: "
            f"{'it exited in ' + format(rx['stop_s'], '.1f') + ' s' if rx.get('stop_s') is not None else 'it had to be killed'}. "
            f"Load average {rx['load_before']:.1f} before, {rx['load_after']:.1f} after.")
    if reexec:
        rep.notes.append("Reexec: systemd's `daemon-reexec`, the only peer, is not measured (no systemd here).")

    if events:
        for n, runs in sorted(events.items()):
            rep.add(f"crash loop, {n} event subscribers: events", "events/s",
                    {"chip": [r["events_per_s"] for r in runs]})
            rep.add(f"crash loop, {n} event subscribers: chipd CPU per event", "µs",
                    {"chip": [r["cpu_us_per_event"] for r in runs]})
            if n:
                rep.add(f"crash loop, {n} event subscribers: lines each got", "lines/s",
                        {"chip": [r["received_per_s"] for r in runs]})
        rep.notes.append(f"Event stream: {slots} workers that exit at once, restarted at once, with 0, 1 "
                         "and 10 `events` subscribers (Python sockets read by one thread). Events = 3 per "
                         "crash (start, exit, restart), from the workers' start lines; CPU is chipd's "
                         "(/proc/PID/schedstat) over the window, which includes its own log on stderr.")

    if cluster:
        def cl(key):
            return {"chip": [r[key] for r in cluster]}
        rep.add("cluster: join on a → in b's view p50", "ms", cl("join_ms_p50"))
        rep.add("cluster: join on a → in b's view p99", "ms", cl("join_ms_p99"))
        rep.add("cluster: join on a → in b's view max", "ms", cl("join_ms_max"))
        rep.add("(floor) one etcd put over HTTP p50", "ms", cl("etcd_put_ms_p50"))
        rep.add("(floor) etcd put → event on a watch, p50", "ms", cl("etcd_watch_ms_p50"))
        rep.add("cluster: leave on a → gone from b's view p50", "ms", cl("leave_ms_p50"))
        rep.add("cluster: leave on a → gone from b's view p99", "ms", cl("leave_ms_p99"))
        rep.add("cluster: chipd a SIGKILLed → its members gone from b's view (lease_ttl 2 s)", "s",
                {"chip": [r["expire_ms"] / 1000 for r in cluster]})
        rep.notes.append(f"Cluster: one etcd on loopback ports, chipds a and b (lease_ttl 2) on it; "
                         f"{cluster[0]['rounds']} join/leave rounds per run by cluster_bench, a worker "
                         "of a, timed from before chip_join/chip_leave on a to the change seen by "
                         "busy-polling b's view (chip_members_cluster); then chipd a killed with SIGKILL "
                         f"with {cluster[0]['members']} members, polled every ms until b's view has none.")
    elif cluster_missing:
        rep.notes.append(f"Cluster: not measured, {cluster_missing}.")

    # ---- targets
    def med(d, k):
        return median_of(d.get(k, []))

    targets = []

    def target(what, value, ok, goal):
        targets.append((what, value, goal, "met" if ok else "**missed**"))

    c50 = med(lat_p50, "chip")
    if c50 is not None:
        floor = med(lat_p50, "bare loop")
        peers = [med(lat_p50, t.name) for t in tools if t.name != "chip" and lat_p50[t.name]]
        ok = floor is not None and c50 <= floor and all(c50 < p for p in peers)
        target("restart latency p50", f"{fmt(c50)} ms", ok,
               f"≤ bare loop ({fmt(floor)} ms) and < every peer ({', '.join(fmt(p) for p in peers)} ms)")
    cs = med(start, "chip")
    if cs is not None:
        peers = [med(start, t.name) for t in tools if t.name != "chip" and start[t.name]]
        best = min(peers) if peers else None
        target(f"start {n_start:,}", f"{fmt(cs)} s", best is not None and cs <= best / 2,
               f"≤ half the best peer ({fmt(best)} s → {fmt(best / 2 if best else None)} s)")
    if big.get("chip") and pss1k.get("chip"):
        per = (big["chip"][1] - statistics.median(pss1k["chip"]) * 1024) / (n_big - n_start)
        target("chipd PSS per added worker", f"{fmt(per)} KiB", per <= 2, "≤ 2 KiB")
        target(f"chipd PSS at {n_big:,}", f"{fmt(big['chip'][1] / 1024)} MiB", big["chip"][1] <= 24 * 1024,
               "≤ 24 MiB")
    cw, cc = med(wake, "chip"), med(cpu, "chip")
    if cw is not None:
        target(f"idle, {n_start:,} workers, {idle_s} s", f"{fmt(cw)} wakeups, {fmt(cc)} ms CPU",
               cw == 0 and cc == 0, "0 wakeups, 0 CPU")
    if live:
        cpu = statistics.median(r["reload_cpu_ms"] for r in live)
        target(f"reload of {n_big:,} workers, 1 changed: chipd CPU", f"{fmt(cpu)} ms", cpu <= 50, "≤ 50 ms")
        restarted = max(r["reload_restarted"] for r in live)
        target("reload: workers restarted", f"{restarted}", restarted == 1, "exactly 1")
    for rx in reexec:
        mode = "in cgroups" if rx["in_cgroups"] else "without cgroups"
        gmax = max(rx["gap_ms"])
        target(f"reexec, {n_big:,} workers {mode}: control socket unanswered",
               f"p50 {fmt(statistics.median(rx['gap_ms']))} ms, max {fmt(gmax)} ms", gmax <= 200,
               "≤ 200 ms (max)")
        target(f"reexec, {mode}: workers restarted, log lines lost", f"{rx['restarted']}, {rx['lost']}",
               rx["restarted"] == 0 and rx["missing"] == 0 and rx["lost"] == 0
               and rx["disorder"] == 0 and rx["malformed"] == 0, "0, 0")
        target(f"reexec, {mode}: chipd's open descriptors", f"{rx['fds_before']} → {rx['fds_after']}",
               rx["fds_after"] <= rx["fds_before"], "no more after")
    if registry:
        m16 = statistics.median(r["members_ns_16"] for r in registry)
        target("chip_members, 16 members", f"{fmt(m16)} ns", m16 <= 100, "≤ 100 ns")
        j = statistics.median(r["join_us_p50"] for r in registry)
        target("chip_join p50", f"{fmt(j)} µs", j <= 10, "≤ 10 µs")
        dm = statistics.median(r["death_us_max"] for r in registry)
        dp = statistics.median(r["death_us_p50"] for r in registry)
        target("member death → removed", f"p50 {fmt(dp)} µs, max {fmt(dm)} µs", dm <= 1000, "≤ 1 ms (max)")

    if cluster:
        cj = statistics.median(r["join_ms_p50"] for r in cluster)
        target("cluster: join on a → in b's view p50", f"{fmt(cj)} ms", cj <= 10, "≤ 10 ms")
        ce = max(r["expire_ms"] for r in cluster) / 1000
        target("cluster: SIGKILLed chipd's members expire (max)", f"{fmt(ce)} s", ce <= 3,
               "≤ lease_ttl + 1 s = 3 s")

    uname = os.uname()
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        model = "?"
    versions = []
    for pkg in ("supervisor", "runit", "s6", "daemontools"):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
        if r.returncode == 0:
            versions.append(f"{pkg} {r.stdout}")
    elapsed = time.monotonic() - began
    md = [
        "# chip benchmark",
        "",
        f"Generated by `scripts/bench{' --quick' if quick else ''}` (sources in `tests/bench/`): "
        "chip beside the supervisors a user would pick instead, interleaved in one run "
        f"(each repetition runs every tool in turn). {reps} run{'s' if reps > 1 else ''} of each; "
        f"{elapsed:.0f} s in all.",
        "",
        f"Machine: {os.cpu_count()} CPUs ({model}), Linux {uname.release}; peers from Debian: "
        f"{', '.join(versions)}. chipd built with `--buildtype=release`. Lower is better everywhere "
        "except ops/s; `chip ÷ tool` below 1 means chip is faster or leaner.",
        "",
        "## Results",
        "",
        rep.table(),
        "",
        *[f"* {n}" for n in rep.notes],
        *([f"* Not measured here: {', '.join(missing)} (not installed)."] if missing else []),
        *[f"* Error: {e}" for e in errors],
        "",
        "## Targets",
        "",
        "| target | chip | goal | |",
        "| --- | --- | --- | --- |",
        *[f"| {a} | {b} | {c} | {d} |" for a, b, c, d in targets],
        "",
    ]
    text = "\n".join(md)
    print(text)
    if args.out:
        notes_file = os.path.join(os.path.dirname(os.path.abspath(__file__)), "analysis.md")
        if os.path.exists(notes_file):
            with open(notes_file) as f:
                text += "\n" + f.read()
        with open(args.out, "w") as f:
            f.write(text)
        log(f"bench: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
