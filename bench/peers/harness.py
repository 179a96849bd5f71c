#!/usr/bin/env python3
"""Peer benchmark harness: procsup vs supervisord, runit (runsvdir) and s6 (s6-svscan), with a
"bare posix_spawn loop" (bare.c: spawn N, waitpid, respawn at once) as the floor column.

Started by run.sh (which installs the peers, finds or builds procsup, compiles child.c and
cleans up). Every supervisor runs the same child binary (child.c). The child takes a
CLOCK_MONOTONIC timestamp first thing after exec and sends "S pid ppid ts id" to a unix datagram
socket that this harness owns, so every "instance is running" instant is an event stamped by the
child itself, on the same clock as time.monotonic_ns() here. Child exits are watched with pidfds
(epoll), so nothing polls. Every wait is bounded.
"""
import argparse
import datetime
import json
import os
import platform
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NS = 1_000_000_000


def now_ns():
    return time.monotonic_ns()


class Failed(Exception):
    """A supervisor failed a phase (start timeout, early exit, bad config...)."""


class Interrupted(BaseException):
    pass


def on_signal(signum, _frame):
    raise Interrupted(f"signal {signum}")


# ------------------------------------------------------------------------------------ /proc
def proc_table():
    """pid -> (ppid, exe) for every process we can see."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                st = f.read().decode("latin-1")
            ppid = int(st[st.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        try:
            exe = os.readlink(f"/proc/{d}/exe")
        except OSError:
            exe = ""
        out[pid] = (ppid, exe)
    return out


def descendants(root, table=None):
    table = table if table is not None else proc_table()
    kids = {}
    for pid, (ppid, _) in table.items():
        kids.setdefault(ppid, []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        if p in table:
            out.append(p)
        todo.extend(kids.get(p, []))
    return out, table


def read_kv(path):
    d = {}
    try:
        with open(path) as f:
            for line in f:
                k, _, v = line.partition(":")
                d[k.strip()] = v.strip()
    except OSError:
        pass
    return d


def mem_of(pids):
    rss = pss = 0
    for p in pids:
        d = read_kv(f"/proc/{p}/smaps_rollup")
        if "Rss" in d:
            rss += int(d["Rss"].split()[0])
            pss += int(d.get("Pss", "0 kB").split()[0])
        else:
            rss += int(read_kv(f"/proc/{p}/status").get("VmRSS", "0 kB").split()[0])
    return rss * 1024, pss * 1024


def sched_snapshot(pids):
    """(pid, tid) -> (cpu_ns, vol_cs, invol_cs) for every thread of the given processes."""
    snap = {}
    for p in pids:
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            base = f"/proc/{p}/task/{t}"
            try:
                with open(base + "/schedstat") as f:
                    cpu = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                cpu = 0
            st = read_kv(base + "/status")
            try:
                snap[(p, t)] = (cpu, int(st["voluntary_ctxt_switches"]),
                                int(st["nonvoluntary_ctxt_switches"]))
            except (KeyError, ValueError):
                pass
    return snap


# ------------------------------------------------------------------------------------ events
class Events:
    """The harness end of the children's datagram socket."""

    def __init__(self, path):
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.setblocking(False)
        self.ep = select.epoll()
        self.ep.register(self.sock.fileno(), select.EPOLLIN)

    def _read_all(self, out):
        while True:
            try:
                data = self.sock.recv(512)
            except BlockingIOError:
                return
            parts = data.decode(errors="replace").split()
            if len(parts) >= 4 and parts[0] == "S":
                out.append((int(parts[1]), int(parts[2]), int(parts[3]),
                            parts[4] if len(parts) > 4 else "-"))

    def drain(self):
        junk = []
        self._read_all(junk)
        return junk

    def collect(self, until, deadline_ns, alive=None):
        """Read start events until until(events) is true or the deadline passes.
        alive(): optional check that the supervisor still runs (else Failed)."""
        events = []
        last_check = 0
        while True:
            self._read_all(events)
            if until(events):
                return events, True
            t = now_ns()
            if t >= deadline_ns:
                return events, False
            if alive and t - last_check > 200_000_000:
                last_check = t
                alive()
            self.ep.poll(min(0.2, (deadline_ns - t) / NS))

    def close(self):
        self.ep.close()
        self.sock.close()


def wait_pids_gone(pids, timeout_s):
    """Wait (pidfd + epoll) until every pid has exited. Returns (ns when the last one went,
    list of pids still alive at the deadline)."""
    ep = select.epoll()
    fds = {}
    last = now_ns()
    for p in pids:
        try:
            fd = os.pidfd_open(p)
        except ProcessLookupError:
            continue
        fds[fd] = p
        ep.register(fd, select.EPOLLIN)
    deadline = now_ns() + int(timeout_s * NS)
    try:
        while fds:
            t = now_ns()
            if t >= deadline:
                break
            for fd, _ in ep.poll(min(1.0, (deadline - t) / NS)):
                last = now_ns()
                ep.unregister(fd)
                os.close(fd)
                fds.pop(fd, None)
        return last, list(fds.values())
    finally:
        for fd in fds:
            os.close(fd)
        ep.close()


# ------------------------------------------------------------------------------------ supervisors
class Supervisor:
    key = "?"
    title = "?"

    def __init__(self, h):
        self.h = h
        self.proc = None
        self.dir = None
        self.logf = None

    # --- to override
    def available(self):
        return None  # None = ok, else a reason string

    def version(self):
        return "?"

    def write_config(self, n, mode):
        raise NotImplementedError

    def argv(self):
        raise NotImplementedError

    def request_stop(self):
        self.proc.send_signal(signal.SIGTERM)

    # --- common
    def child_cmd(self, mode, ident):
        return [self.h.child, self.h.events.path, mode, ident]

    def launch(self, n, mode, tag):
        self.dir = os.path.join(self.h.work, f"{self.key}-{tag}")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.write_config(n, mode)
        self.logpath = os.path.join(self.h.work, f"{self.key}-{tag}.log")
        self.logf = open(self.logpath, "wb")
        self.h.events.drain()
        t0 = now_ns()
        self.proc = subprocess.Popen(self.argv(), cwd=self.dir, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     env={"PATH": PATH, "HOME": self.dir, "LANG": "C"},
                                     start_new_session=True)
        self.h.running.append(self)
        return t0

    def check_alive(self):
        rc = self.proc.poll()
        if rc is not None:
            raise Failed(f"{self.title} exited with {rc} (log: {self.log_tail(1)[:120]})")

    def log_tail(self, lines=3):
        try:
            with open(self.logpath, "rb") as f:
                txt = f.read()[-2000:].decode(errors="replace").strip().splitlines()
            return " | ".join(txt[-lines:]) or "empty"
        except OSError:
            return "no log"

    def tree(self):
        """(supervisor-side pids, child pids) of the tree rooted at the launched process."""
        pids, table = descendants(self.proc.pid)
        sup = [p for p in pids if table[p][1] != self.h.child]
        kids = [p for p in pids if table[p][1] == self.h.child]
        return sup, kids

    def wait_started(self, t0, n, timeout_s):
        seen = {}

        def done(evs):
            for e in evs[len(seen_list):]:
                seen_list.append(e)
                seen.setdefault(e[0], e)
            return len(seen) >= n
        seen_list = []
        _, ok = self.h.events.collect(done, t0 + int(timeout_s * NS), self.check_alive)
        if not ok:
            raise Failed(f"only {len(seen)}/{n} instances started within {timeout_s:.0f} s "
                         f"(log: {self.log_tail()})")
        return max(e[2] for e in seen.values()) - t0

    def stop(self, timeout_s):
        """Ask the supervisor to stop everything. Returns ns until every child is gone."""
        _, kids = self.tree()
        t0 = now_ns()
        self.request_stop()
        last, left = wait_pids_gone(kids, timeout_s)
        if left:
            e = Failed(f"{len(left)} of {len(kids)} children still running {timeout_s:.0f} s after stop")
            e.cell = f"> {timeout_s:.0f} s ({len(left)}/{len(kids)} still running)"
            raise e
        try:
            self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.h.note(f"{self.title}: supervisor still running {timeout_s:.0f} s after stop; killed")
        self.kill()
        return (last - t0) if kids else 0

    def kill(self):
        """Forcefully remove everything this supervisor started (by pid)."""
        if self.proc is None:
            return
        for _ in range(3):
            pids, table = descendants(self.proc.pid)
            extra = [p for p, (_, exe) in table.items() if exe == self.h.child]
            victims = set(pids) | set(extra)
            if self.proc.poll() is None:
                victims.add(self.proc.pid)
            if not victims:
                break
            for p in victims:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_pids_gone(list(victims), 5)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self in self.h.running:
            self.h.running.remove(self)
        if self.logf:
            self.logf.close()
            self.logf = None
        self.proc = None


class Supervisord(Supervisor):
    key, title = "supervisord", "supervisord"

    def available(self):
        return None if shutil.which("supervisord", path=PATH) else "supervisord not installed"

    def version(self):
        try:
            return subprocess.run([shutil.which("supervisord", path=PATH), "--version"],
                                  capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception:
            return "?"

    def write_config(self, n, mode):
        d = self.dir
        lines = ["[supervisord]", f"logfile={d}/supervisord.log", f"pidfile={d}/supervisord.pid",
                 f"childlogdir={d}", "nodaemon=true", "minfds=16384", "minprocs=4096",
                 f"identifier=peers-{os.getpid()}", ""]
        for i in range(n):
            name = f"c{i:04d}"
            lines += [f"[program:{name}]",
                      "command=" + " ".join(self.child_cmd(mode, f"{self.key}-{name}")),
                      "autostart=true", "autorestart=true", "startsecs=0", "startretries=1000",
                      "stopsignal=TERM", "stopwaitsecs=10", "redirect_stderr=true",
                      "stdout_logfile=NONE", ""]
        with open(os.path.join(d, "supervisord.conf"), "w") as f:
            f.write("\n".join(lines))

    def argv(self):
        return [shutil.which("supervisord", path=PATH), "-n", "-c",
                os.path.join(self.dir, "supervisord.conf")]


class ServiceDirs(Supervisor):
    """runit and s6 share the layout: one directory per service, ./run = the child binary
    (a symlink, so no shell sits in between) reading its arguments from ./child.conf."""

    def write_config(self, n, mode):
        for i in range(n):
            name = f"c{i:04d}"
            sd = os.path.join(self.dir, name)
            os.makedirs(sd)
            with open(os.path.join(sd, "child.conf"), "w") as f:
                f.write(" ".join(self.child_cmd(mode, f"{self.key}-{name}")[1:]) + "\n")
            os.symlink(self.h.child, os.path.join(sd, "run"))
        # runsvdir sleeps 1 s before scanning a directory modified within the current second;
        # a real scan dir is prepared well before the supervisor starts, so date it back.
        past = time.time() - 10
        os.utime(self.dir, (past, past))

    def version(self):
        try:
            return "Debian " + self.pkg + " " + subprocess.run(
                ["dpkg-query", "-W", "-f=${Version}", self.pkg], capture_output=True, text=True,
                timeout=20).stdout.strip()
        except Exception:
            return "?"


class Runit(ServiceDirs):
    key, title, pkg = "runit", "runit (runsvdir)", "runit"

    def available(self):
        return None if shutil.which("runsvdir", path=PATH) else "runit not installed"

    def argv(self):
        return [shutil.which("runsvdir", path=PATH), self.dir]

    def request_stop(self):
        # runit's own stage 3 ends this way: HUP to runsvdir = TERM to every runsv, each of
        # which takes its service down (TERM + CONT) and exits.
        self.proc.send_signal(signal.SIGHUP)


class S6(ServiceDirs):
    key, title, pkg = "s6", "s6 (s6-svscan)", "s6"

    def available(self):
        return None if shutil.which("s6-svscan", path=PATH) else "s6 not installed"

    def argv(self):
        return [shutil.which("s6-svscan", path=PATH), "-c", str(max(1000, 2 * self.h.max_n)),
                self.dir]

    def request_stop(self):
        # = s6-svscanctl -t: SIGTERM to every s6-supervise (service down, then exit), then exit.
        self.proc.send_signal(signal.SIGTERM)


class Procsup(Supervisor):
    key, title = "procsup", "procsup"
    cgroups = True  # a cgroup per instance where procsup can make them (root here)

    def binary(self):
        return self.h.procsup

    def available(self):
        if not self.binary():
            return "n/a (procsup not built)"
        return self.h.procsup_broken

    def version(self):
        try:
            rev = subprocess.run(["git", "-C", self.h.repo, "log", "-1", "--format=%h %cs"],
                                 capture_output=True, text=True, timeout=20).stdout.strip()
            dirty = subprocess.run(["git", "-C", self.h.repo, "status", "--porcelain", "--",
                                    "daemon", "supervisor", "worker", "ipc", "shm"],
                                   capture_output=True, text=True, timeout=20).stdout.strip()
            return f"git {rev}" + (" + uncommitted changes" if dirty else "")
        except Exception:
            return "?"

    def write_config(self, n, mode):
        d = self.dir
        sock = os.path.join(d, "procsup.sock")
        self.socket = sock

        def q(s):
            return json.dumps(s)
        out = ["[supervisor]", 'policy = "one_for_one"',
               "intensity = 1000000      # never give up during the benchmark", 'period = "1s"',
               f"socket = {q(sock)}", f"cgroups = {'true' if self.cgroups else 'false'}", ""]
        layout = self.h.args.procsup_layout
        groups = [(f"c{i:04d}", 1) for i in range(n)] if layout == "programs" else [("c", n)]
        for name, inst in groups:
            cmd = self.child_cmd(mode, f"{self.key}-{name}")
            out += ["[[program]]", f"name = {q(name)}",
                    "command = [" + ", ".join(q(c) for c in cmd) + "]",
                    'strategy = "restart"', "restart_on_exit = true", f"instances = {inst}",
                    'stop_signal = "TERM"', 'stop_timeout = "10s"', ""]
        self.cfg = os.path.join(d, "procsup.toml")
        with open(self.cfg, "w") as f:
            f.write("\n".join(out))

    def argv(self):
        return [self.binary(), "run", self.cfg]

    def launch(self, n, mode, tag):
        t0 = super().launch(n, mode, tag)
        return t0

    def check_config(self):
        """procsup check on a small config: a broken binary or a config-format mismatch shows
        up here, before any timing."""
        self.dir = os.path.join(self.h.work, "procsup-check")
        shutil.rmtree(self.dir, ignore_errors=True)
        os.makedirs(self.dir)
        self.write_config(2, "long")
        try:
            r = subprocess.run([self.binary(), "check", self.cfg], capture_output=True, text=True,
                               timeout=30)
        except Exception as e:
            return f"n/a (procsup check: {e})"
        if r.returncode != 0:
            msg = (r.stderr or r.stdout).strip().splitlines()
            return "n/a (procsup check failed: " + (msg[0][:120] if msg else f"rc {r.returncode}") + ")"
        return None

    def status_json(self):
        try:
            r = subprocess.run([self.binary(), "ctl", "--socket", self.socket, "status", "--json"],
                               capture_output=True, text=True, timeout=10)
            if r.returncode not in (0, 3):  # 3: answered, but not every instance is running
                return None
            try:
                v = json.loads(r.stdout)
                return v if isinstance(v, list) else [v]
            except ValueError:  # one object per line
                return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        except Exception:
            return None



class ProcsupNoCgroups(Procsup):
    """The same binary with `cgroups = false`: what a cgroup per instance costs a restart."""
    key, title = "procsup_nocg", "procsup (no cgroups)"
    cgroups = False


class ProcsupOld(Procsup):
    """--procsup-old: another procsup binary (the one before a change), measured in the same run
    beside the new one, so that the two are compared under the same machine state."""
    key, title = "procsup_old", "procsup (old)"

    def binary(self):
        return self.h.procsup_old

    def version(self):
        return self.h.procsup_old


class ProcsupOldNoCgroups(ProcsupOld):
    key, title = "procsup_old_nocg", "procsup (old, no cgroups)"
    cgroups = False


class Bare(Supervisor):
    """bare.c: posix_spawn N instances, block in waitpid(-1), respawn at once, no backoff.
    The floor: what is left of a restart when the supervisor does nothing but wait and spawn."""
    key, title = "bare", "bare posix_spawn loop (floor)"

    def available(self):
        b = self.h.bare
        return None if b and os.access(b, os.X_OK) else "n/a (bare.c not built)"

    def version(self):
        libc = " ".join(platform.libc_ver()) or "?"
        return f"bench/peers/bare.c, {libc}"

    def write_config(self, n, mode):
        # No config: everything is on the command line (kept in the run dir for reference).
        self.n, self.mode = n, mode
        with open(os.path.join(self.dir, "argv"), "w") as f:
            f.write(" ".join(self.argv()) + "\n")

    def argv(self):
        return [self.h.bare, str(self.n), "--"] + self.child_cmd(self.mode, f"{self.key}-c")

    def kill(self):
        # bare respawns at once: take it down first, so nothing new appears while the tree is
        # being killed (anything spawned in between is found by exe in Supervisor.kill).
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        super().kill()


# ------------------------------------------------------------------------------------ harness
def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fms(ns):
    if ns is None:
        return "–"
    ms = ns / 1e6
    if ms < 10:
        return f"{ms:.2f} ms"
    if ms < 100:
        return f"{ms:.1f} ms"
    return f"{ms:,.0f} ms"


def fmib(b):
    return f"{b / 1048576:.1f} MiB"


class Harness:
    def __init__(self, args):
        self.args = args
        self.work = args.work
        self.child = os.path.realpath(args.child)
        self.procsup = args.procsup or None
        self.procsup_old = os.path.realpath(args.procsup_old) if args.procsup_old else None
        self.bare = os.path.realpath(args.bare) if args.bare else None
        self.repo = args.repo
        self.procsup_broken = None
        self.running = []
        self.plotted = False
        self.notes = []
        self.results = {}   # key -> metric -> cell text
        self.raw = {}       # key -> raw numbers
        self.events = Events(os.path.join(self.work, "events.sock"))
        self.sizes = [int(s) for s in args.sizes.split(",") if s]
        self.max_n = max(self.sizes)

    def note(self, msg):
        print(f"[peers] note: {msg}", file=sys.stderr, flush=True)
        self.notes.append(msg)

    def log(self, msg):
        print(f"[peers] {msg}", file=sys.stderr, flush=True)

    def cleanup(self):
        for s in list(self.running):
            try:
                s.kill()
            except Exception as e:  # keep going: run.sh sweeps what is left
                self.log(f"cleanup of {s.key}: {e}")

    # ---- phases
    def phase_restart(self, sup, kids):
        """SIGKILL one long-running child at a time; latency = the new child's own exec
        timestamp minus the instant just before kill(). Targets go round-robin over the
        instances, so each killed child has been up for many seconds (runsv, s6-supervise and
        supervisord throttle restarts of children younger than 1 s)."""
        lat, timeouts = [], 0
        targets = sorted(kids)
        known = set(kids)
        for i in range(self.args.kills):
            pid = targets[i % len(targets)]
            try:
                if os.readlink(f"/proc/{pid}/exe") != self.child:
                    raise OSError
            except OSError:
                _, cur = sup.tree()
                fresh = [p for p in cur if p not in known] or cur
                if not fresh:
                    raise Failed("no child left to kill")
                pid = fresh[0]
            self.events.drain()
            t0 = now_ns()
            os.kill(pid, signal.SIGKILL)
            evs, ok = self.events.collect(lambda es: any(e[0] not in known for e in es),
                                          t0 + int(self.args.restart_timeout * NS), sup.check_alive)
            new = [e for e in evs if e[0] not in known]
            if not ok or not new:
                timeouts += 1
            else:
                e = new[0]
                known.add(e[0])
                targets[i % len(targets)] = e[0]
                lat.append(e[2] - t0)
            time.sleep(self.args.kill_gap)
        return lat, timeouts

    def phase_idle(self, sup):
        sup_pids, _ = sup.tree()
        a = sched_snapshot(sup_pids)
        time.sleep(self.args.idle)
        sup_pids2, _ = sup.tree()
        b = sched_snapshot(sup_pids2)
        cpu = vol = inv = 0
        for k, (c2, v2, i2) in b.items():
            c1, v1, i1 = a.get(k, (0, 0, 0))
            cpu += c2 - c1
            vol += v2 - v1
            inv += i2 - i1
        return cpu, vol, inv, len(sup_pids2), len(b)

    def phase_crash(self, sup):
        t0 = sup.launch(1, "crash", "crash")
        want = self.args.crash_restarts + 1
        evs, _ = self.events.collect(lambda es: len(es) >= want,
                                     t0 + int(self.args.crash_budget * NS))
        sup.kill()
        ts = [e[2] for e in evs][:want]
        return [b - a for a, b in zip(ts, ts[1:])], len(evs)

    def run_one(self, sup):
        """All phases for one supervisor. A phase that fails fills its own cell and the run
        goes on with the next phase; a failed first start marks the whole column n/a."""
        r = self.results.setdefault(sup.key, {})
        raw = self.raw.setdefault(sup.key, {})
        raw["version"] = sup.version()
        r["version"] = raw["version"]
        for n in self.sizes:
            phase = f"start{n}"
            self.log(f"{sup.title}: start {n}")
            try:
                t0 = sup.launch(n, "long", f"n{n}")
                dt = sup.wait_started(t0, n, self.args.timeout)
                r[f"start{n}"] = fms(dt)
                raw[f"start{n}_ns"] = dt
                time.sleep(self.args.settle)
                sup_pids, kids = sup.tree()
                if len(kids) != n:
                    self.note(f"{sup.title}: {len(kids)} children found in its tree, expected {n}")
                rss, pss = mem_of(sup_pids)
                r[f"rss{n}"] = f"{fmib(rss)} / {fmib(pss)} ({len(sup_pids)} proc)"
                raw[f"mem{n}"] = {"rss": rss, "pss": pss, "procs": len(sup_pids)}
                if isinstance(sup, Procsup) and n == self.sizes[0]:
                    st = sup.status_json()
                    if st is None:
                        self.note("procsup ctl status --json did not answer")
                    else:
                        running = sum(1 for x in st if str(x.get("state")) == "running")
                        raw["status_running"] = running
                        if running != n:
                            self.note(f"procsup ctl status --json: {running} of {n} running")
                if n == self.sizes[0]:
                    phase = "idle_cpu"
                    self.log(f"{sup.title}: idle {self.args.idle:g} s")
                    cpu, vol, inv, nproc, ntask = self.phase_idle(sup)
                    r["idle_cpu"] = f"{cpu / 1e6:.2f} ms"
                    r["idle_wake"] = f"{vol + inv} ({vol} vol + {inv} invol)"
                    raw["idle"] = {"cpu_ns": cpu, "vol": vol, "invol": inv, "procs": nproc,
                                   "threads": ntask, "n": n, "seconds": self.args.idle}
                    phase = "rl_med"
                    self.log(f"{sup.title}: restart latency, {self.args.kills} kills")
                    lat, tmo = self.phase_restart(sup, kids)
                    raw["restart_ns"] = lat
                    raw["restart_timeouts"] = tmo
                    r["rl_med"] = fms(statistics.median(lat)) if lat else "–"
                    r["rl_p90"] = fms(pct(lat, 0.9)) if lat else "–"
                    r["rl_range"] = (f"{fms(min(lat))} … {fms(max(lat))}" if lat else "–") + \
                        (f", {tmo} timeouts" if tmo else "")
                elif self.args.restart_all_sizes:
                    # The same restart phase with n instances running (scale: does a restart
                    # get slower with the number of instances?).
                    phase = f"rl_med{n}"
                    self.log(f"{sup.title}: restart latency at {n}, {self.args.kills} kills")
                    lat, tmo = self.phase_restart(sup, kids)
                    raw[f"restart{n}_ns"] = lat
                    raw[f"restart{n}_timeouts"] = tmo
                    r[f"rl_med{n}"] = fms(statistics.median(lat)) if lat else "–"
                    r[f"rl_p90{n}"] = fms(pct(lat, 0.9)) if lat else "–"
                phase = f"stop{n}"
                self.log(f"{sup.title}: stop {n}")
                dt = sup.stop(self.args.stop_timeout)
                r[f"stop{n}"] = fms(dt)
                raw[f"stop{n}_ns"] = dt
            except Failed as e:
                self.note(f"{sup.title}, {phase.replace('rl_med', 'restart latency')}: {e}")
                r[phase] = f"failed: {e.cell if getattr(e, 'cell', None) else str(e)[:70]}"
                if phase == f"start{self.sizes[0]}":
                    r["_na"] = f"n/a ({sup.key} failed to start, see notes)"
                    return
            finally:
                sup.kill()
        self.log(f"{sup.title}: crash loop")
        try:
            iv, nstarts = self.phase_crash(sup)
        except Failed as e:
            self.note(f"{sup.title}, crash loop: {e}")
            r["crash"] = f"failed: {str(e)[:80]}"
            return
        finally:
            sup.kill()
        raw["crash_intervals_ns"] = iv
        r["crash"] = (", ".join(f"{x / 1e6:.0f}" if x >= 10e6 else f"{x / 1e6:.1f}" for x in iv)
                      + f" ({nstarts} starts in ≤{self.args.crash_budget:g} s)") if iv else \
            f"no restart ({nstarts} starts in {self.args.crash_budget:g} s)"
        if isinstance(sup, Bare):
            r["crash"] += ", no backoff: floor only"

    def run(self):
        # procsup right after the floor: its restart latency is read against the floor's, and
        # measured minutes apart (after the peers' thousands of processes) the two drifted apart
        # by up to 0.2 ms on this VM with nothing in procsup changed.
        sups = [Bare(self), Procsup(self), ProcsupNoCgroups(self), Supervisord(self), Runit(self), S6(self)]
        if self.procsup_old:
            # Interleaved with the new binary's columns: old and new under the same conditions.
            sups[2:2] = [ProcsupOld(self)]
            sups[4:4] = [ProcsupOldNoCgroups(self)]
        only = set(self.args.only.split(",")) if self.args.only else None
        unknown = (only or set()) - {s.key for s in sups}
        if unknown:
            self.note(f"--only: unknown supervisor(s) ignored: {', '.join(sorted(unknown))}")
        sups = [s for s in sups if only is None or s.key in only]
        self.sups = sups
        for sup in sups:
            reason = sup.available()
            if reason is None and isinstance(sup, Procsup):
                reason = sup.check_config()
                self.procsup_broken = reason
            if reason:
                self.log(f"{sup.title}: skipped: {reason}")
                self.results[sup.key] = {"_na": reason if reason.startswith("n/a") else f"n/a ({reason})"}
                continue
            try:
                self.run_one(sup)
            except Failed as e:
                self.note(f"{sup.title}: {e}")
                self.results[sup.key]["_na"] = f"n/a ({sup.key} failed: {str(e)[:100]})"
            finally:
                sup.kill()
            self.leftover_check(sup)

    def leftover_check(self, sup):
        table = proc_table()
        left = [p for p, (_, exe) in table.items() if exe == self.child]
        if left:
            self.note(f"after {sup.title}: {len(left)} children left, killed")
            for p in left:
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    # ---- output
    ROWS = [
        ("rl_med", "restart latency after SIGKILL, median"),
        ("rl_p90", "restart latency after SIGKILL, p90"),
        ("rl_range", "restart latency, min … max"),
        ("start100", "start 100 instances"),
        ("stop100", "stop 100 instances (TERM)"),
        ("start1000", "start 1,000 instances"),
        ("stop1000", "stop 1,000 instances (TERM)"),
        ("rss100", "supervisor-side RSS / PSS, 100 instances"),
        ("rss1000", "supervisor-side RSS / PSS, 1,000 instances"),
        ("idle_cpu", "supervisor CPU time, {idle:g} s idle, 100 instances"),
        ("idle_wake", "supervisor wake-ups (context switches), {idle:g} s idle, 100 instances"),
        ("crash", "crash loop: intervals between starts (ms)"),
        ("version", "version"),
    ]

    def table(self):
        sups = self.sups
        hdr = "| metric | " + " | ".join(s.title for s in sups) + " |"
        sep = "|---|" + "---|" * len(sups)
        lines = [hdr, sep]
        rows = list(self.ROWS)
        at = rows.index(("rss1000", "supervisor-side RSS / PSS, 1,000 instances")) + 1
        for n in self.sizes:
            if n in (100, 1000):
                continue
            rows[at:at] = [(f"start{n}", f"start {n:,} instances"), (f"stop{n}", f"stop {n:,} instances (TERM)"),
                           (f"rss{n}", f"supervisor-side RSS / PSS, {n:,} instances")]
            at += 3
        if self.args.restart_all_sizes:
            for n in self.sizes[1:]:
                rows[at:at] = [(f"rl_med{n}", f"restart latency after SIGKILL, median, {n:,} instances"),
                               (f"rl_p90{n}", f"restart latency after SIGKILL, p90, {n:,} instances")]
                at += 2
        for key, label in rows:
            if key.startswith(("start", "stop", "rss")) and int("".join(c for c in key if c.isdigit())) not in self.sizes:
                continue
            label = label.format(idle=self.args.idle).replace("100 instances", f"{self.sizes[0]} instances")
            cells = []
            for s in sups:
                r = self.results.get(s.key, {})
                v = r.get(key)
                if v is None:
                    v = r.get("_na", "–") if key != "version" or "_na" not in r else r["_na"]
                cells.append(str(v))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def plot(self):
        gp = shutil.which("gnuplot", path=PATH)
        series = [(s, self.raw.get(s.key, {}).get("restart_ns")) for s in self.sups]
        series = [(s, sorted(l)) for s, l in series if l]
        if not gp or not series:
            self.note("no plot: " + ("gnuplot missing" if not gp else "no latencies"))
            return
        files = []
        for s, lat in series:
            fn = os.path.join(self.work, f"lat-{s.key}.dat")
            with open(fn, "w") as f:
                for i, v in enumerate(lat):
                    f.write(f"{v / 1e6:.6f} {(i + 1) / len(lat):.6f}\n")
            files.append((fn, s.title))
        tmp = self.args.plot + ".tmp.png"
        fl = " ".join(fn for fn, _ in files)
        tl = " ".join(s.key for s, _ in series)
        r = subprocess.run([gp, "-e", f"outfile='{tmp}'; files='{fl}'; titles='{tl}'; "
                                      f"subtitle='{self.args.kills} SIGKILLs each; nproc {os.cpu_count()}, kernel {platform.release()}'",
                            self.args.gnuplot_script], capture_output=True, text=True, timeout=60)
        if r.returncode != 0 or not os.path.exists(tmp):
            self.note("gnuplot failed: " + r.stderr.strip()[:300])
            return
        os.replace(tmp, self.args.plot)
        self.plotted = True

    def machine(self):
        cpu = "?"
        try:
            with open("/proc/cpuinfo") as f:
                for line in f:
                    if line.startswith("model name"):
                        cpu = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
        mem = read_kv("/proc/meminfo").get("MemTotal", "?")
        load = open("/proc/loadavg").read().split()[:3]
        return (f"nproc {os.cpu_count()} ({cpu}), kernel {platform.release()}, "
                f"MemTotal {mem}, load average at start {' '.join(self.load0)}, at end {' '.join(load)}")

    def write_results(self, table):
        a = self.args
        date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        md = [
            "# procsup vs supervisord, runit and s6",
            "",
            f"Command: `{a.cmdline}`  ",
            f"Date: {date}  ",
            f"Machine: {self.machine()}",
            "",
            table,
            "",
            "![restart latency CDF](restart_latency.png)",
            "",
            "## How it is measured",
            "",
        ] + ([
            "- The first column, *bare posix_spawn loop (floor)*, is `bare.c`: a C program that "
            "starts the N instances with posix_spawn, blocks in `waitpid(-1)` and respawns an "
            "exited instance at once (no config, no timers, no backoff), i.e. the least any "
            "supervisor must do; its numbers are the cost of the kernel, fork/exec and the child "
            "itself on this machine, so the difference between a supervisor's cell and the bare "
            "cell is that supervisor's own cost.",
        ] if any(isinstance(s, Bare) for s in self.sups) else []) + [
            "- Every supervisor runs the same static C child (`child.c`). First thing after exec it "
            "reads CLOCK_MONOTONIC and sends `S pid ppid ts` to a unix datagram socket owned by the "
            "harness; the harness uses the same clock (`time.monotonic_ns`). No polling: starts "
            "are these events, exits are pidfds in epoll. runit and s6 `./run` is a symlink to "
            "the child (no shell in between); bare, supervisord and procsup exec it directly too.",
            "- Restart latency: SIGKILL one long-running instance (round-robin over "
            f"the {self.sizes[0]}, each killed child up for many seconds, {a.kill_gap * 1000:g} ms "
            "between kills); latency = the new child's own timestamp − the instant just before "
            f"kill(2). {a.kills} kills per supervisor.",
            "- Start N: from just before the supervisor process is spawned (all N services in its "
            "config/scan dir) to the last of the N children's first timestamps. Stop N: from the "
            "stop request (bare and supervisord SIGTERM; runsvdir SIGHUP, runit's own shutdown "
            "path; s6-svscan SIGTERM = `s6-svscanctl -t`; procsup SIGTERM) until every child has "
            "exited (pidfd readable). The child exits 0 on SIGTERM.",
            "- Memory: sum of `Rss` and `Pss` from `/proc/PID/smaps_rollup` over the supervisor "
            "side = every process in the supervisor's tree that is not the child (bare; "
            "supervisord; runsvdir + one runsv per service; s6-svscan + one s6-supervise per "
            f"service; procsup), measured {a.settle:g} s after the last start.",
            f"- Idle: over {a.idle:g} s with {self.sizes[0]} instances and nothing happening, the "
            "delta of CPU time (`/proc/PID/task/*/schedstat`, ns) and of voluntary + involuntary "
            "context switches (`/proc/PID/task/*/status`) summed over every thread of the "
            "supervisor side. Each context switch of a sleeping supervisor is a wake-up.",
            "- Crash loop: one service whose child exits 1 right after reporting; the intervals "
            f"between successive starts (first {a.crash_restarts}, at most {a.crash_budget:g} s of "
            "waiting). supervisord: startsecs=0, startretries=1000; procsup: default backoff, "
            "intensity 1000000 so it never gives up; bare: no backoff at all (a floor only, "
            "stopped after those starts).",
            "- Configs (generated in a temp dir): bare none, `bare N -- CHILD ARGS`; supervisord "
            "one `[program:cNNNN]` per instance (autorestart=true, startsecs=0, "
            "stdout_logfile=NONE), `supervisord -n`; runit one service dir per instance, "
            "`runsvdir DIR`; s6 the same, `s6-svscan -c MAX DIR`; procsup "
            + ("one `[[program]]` per instance" if a.procsup_layout == "programs"
               else "one `[[program]]` with `instances = N`") + ", `procsup run cfg.toml`.",
            "",
        ]
        if self.notes:
            md += ["## Notes from this run", ""] + [f"- {n}" for n in self.notes] + [""]
        with open(a.results, "w") as f:
            f.write("\n".join(md))
        with open(os.path.join(os.path.dirname(a.results), "results.json"), "w") as f:
            json.dump({"command": a.cmdline, "date": date, "machine": self.machine(),
                       "raw": self.raw, "notes": self.notes}, f, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--child", required=True)
    ap.add_argument("--procsup", default="")
    ap.add_argument("--restart-all-sizes", action="store_true",
                    help="measure restart latency at every size, not only the first")
    ap.add_argument("--procsup-old", default="", help="a second procsup binary (before a change), columns procsup_old, procsup_old_nocg")
    ap.add_argument("--bare", default="", help="the compiled bare.c (floor column)")
    ap.add_argument("--repo", default=".")
    ap.add_argument("--cmdline", default="bench/peers/run.sh")
    ap.add_argument("--results", required=True)
    ap.add_argument("--plot", required=True)
    ap.add_argument("--gnuplot-script", required=True)
    ap.add_argument("--quick", action="store_true", help="15 kills, 100 instances, 5 s idle")
    ap.add_argument("--idle", type=float, default=None, help="idle window in s (default 20)")
    ap.add_argument("--kills", type=int, default=None, help="SIGKILLs per supervisor (default 50)")
    ap.add_argument("--sizes", default=None, help="instance counts (default 100,1000)")
    ap.add_argument("--only", default="", help="comma list of bare,supervisord,runit,s6,procsup,procsup_nocg,procsup_old,procsup_old_nocg")
    ap.add_argument("--out", default=None, help="results file (default bench/peers/RESULTS.md)")
    ap.add_argument("--crash-budget", type=float, default=None, help="s to wait for the crash loop")
    ap.add_argument("--timeout", type=float, default=180, help="start timeout, s")
    ap.add_argument("--procsup-layout", choices=["programs", "instances"], default="programs")
    a = ap.parse_args()
    a.idle = a.idle if a.idle is not None else (5 if a.quick else 20)
    a.kills = a.kills if a.kills is not None else (15 if a.quick else 50)
    a.sizes = a.sizes or ("100" if a.quick else "100,1000")
    a.crash_budget = a.crash_budget if a.crash_budget is not None else (15 if a.quick else 45)
    if a.out:
        a.results = a.out
        a.plot = os.path.join(os.path.dirname(os.path.abspath(a.out)), "restart_latency.png")
    os.makedirs(os.path.dirname(os.path.abspath(a.results)), exist_ok=True)
    a.crash_restarts = 10
    a.kill_gap = 0.05
    a.restart_timeout = 5.0
    a.stop_timeout = 150.0
    a.settle = 1.0

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    except (ValueError, OSError):
        pass

    h = Harness(a)
    h.load0 = open("/proc/loadavg").read().split()[:3]
    rc = 0
    try:
        h.run()
    except Interrupted as e:
        h.log(f"interrupted ({e}), cleaning up")
        rc = 130
    finally:
        h.cleanup()
    if rc:
        return rc
    table = h.table()
    print(table)
    h.plot()
    h.write_results(table)
    h.log(f"wrote {a.results}" + (f" and {a.plot}" if h.plotted else ""))
    h.events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
