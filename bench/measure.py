#!/usr/bin/env python3
"""Runs one load-generator command against one system and accounts the system's resources.

A "system" is every process in the given Linux sessions (bench/run.sh starts each server process with
setsid, so Postfix's master and all the smtpd/cleanup/qmgr/smtp children it forks, or Haraka's cluster
workers, share their leader's session id). Around the command it samples:

  * server CPU: utime+stime+cutime+cstime of every process of those sessions, before and after (children
    that exit meanwhile are counted through their parent's cutime/cstime once reaped);
  * peak memory: every 0.5 s the sum of VmRSS and of Pss (smaps_rollup; shared pages divided among their
    users, the honest number for a process-per-session server) over those processes; the maximum of each;
  * optionally, after the command: wait until a Postfix queue directory is empty (--drain SPOOL), so the
    CPU of delivering what was accepted is counted too.

Prints one JSON object: the load generator's key=value pairs plus the measurements. Reads /proc only.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")


def procs_of(sids):
    """(pid, stat fields after the command name) of every process whose session is in sids."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        # fields[0] is field 3 (state); session id is field 6, utime..cstime fields 14..17.
        # The session leader is bench/reaper.py, the wrapper, not the server: leave it out.
        if int(fields[3]) in sids and int(name) not in sids:
            out.append((int(name), fields))
    return out


def cpu_ticks(sids):
    return sum(sum(int(x) for x in f[11:15]) for _, f in procs_of(sids))


def memory_kib(sids):
    rss = pss = 0
    for pid, _ in procs_of(sids):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def queue_files(spool):
    n = 0
    for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
        for _, _, files in os.walk(os.path.join(spool, sub)):
            n += len(files)
    return n


def parse_kv(line):
    out = {}
    for item in line.split():
        if "=" in item:
            k, v = item.split("=", 1)
            try:
                out[k] = float(v) if "." in v else int(v)
            except ValueError:
                out[k] = v
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sids", required=True, help="comma-separated session ids of the system's processes")
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--system", required=True)
    ap.add_argument("--drain", help="Postfix queue directory: wait until it is empty before the CPU sample")
    ap.add_argument("--drain-timeout", type=float, default=120)
    ap.add_argument("--primary", help="idle mode: the session id whose own memory is reported too (the edge)")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    sids = {int(s) for s in a.sids.split(",") if s}
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

    t0 = time.monotonic()
    c0 = cpu_ticks(sids)
    peak_rss, peak_pss = memory_kib(sids)
    primary = {int(a.primary)} if a.primary else sids
    base_rss, base_pss = peak_rss, peak_pss
    base_primary_rss, _ = memory_kib(primary)
    ready = {}
    lines = []

    def reader(stream):
        # Idle mode: the load generator prints "ready ..." once every session is established and then
        # holds them: that is when the memory of the sessions is sampled.
        for line in stream:
            lines.append(line)
            if line.startswith("ready "):
                time.sleep(0.5)
                ready["rss"], ready["pss"] = memory_kib(sids)
                ready["primary_rss"], ready["primary_pss"] = memory_kib(primary)

    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    th = threading.Thread(target=reader, args=(p.stdout,))
    th.start()
    while p.poll() is None:
        rss, pss = memory_kib(sids)
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.5)  # sampling costs CPU that the servers share
    th.join()
    out = "".join(lines)
    drain_s = 0.0
    if a.drain:
        d0 = time.monotonic()
        while queue_files(a.drain) > 0 and time.monotonic() - d0 < a.drain_timeout:
            rss, pss = memory_kib(sids)
            peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
            time.sleep(0.1)
        drain_s = time.monotonic() - d0
    c1 = cpu_ticks(sids)
    wall = time.monotonic() - t0

    r = parse_kv(out.strip().splitlines()[-1] if out.strip() else "")
    r.update(scenario=a.scenario, system=a.system, loadgen_rc=p.returncode)
    server_cpu = (c1 - c0) / HZ
    r["server_cpu_s"] = round(server_cpu, 2)
    rcpts = r.get("rcpts", 0) or 0
    msgs = r.get("messages_ok", 0) or 0
    r["server_us_per_rcpt"] = round(server_cpu / rcpts * 1e6, 1) if rcpts else None
    r["server_us_per_msg"] = round(server_cpu / msgs * 1e6, 1) if msgs else None
    tls_sessions = r.get("tls_sessions", 0) or 0
    if tls_sessions:
        r["server_us_per_tls_session"] = round(server_cpu / tls_sessions * 1e6, 1)
    r["server_cores"] = round(server_cpu / wall, 2) if wall else None
    r["peak_rss_mib"] = round(peak_rss / 1024, 1)
    r["peak_pss_mib"] = round(peak_pss / 1024, 1)
    r["drain_s"] = round(drain_s, 2)
    secs = r.get("seconds", 0) or 0
    r["client_cores"] = round(r.get("client_cpu_s", 0) / secs, 2) if secs else None
    if ready:
        n = r.get("established", 0) or 0
        r["rss_before_mib"] = round(base_rss / 1024, 1)
        r["rss_ready_mib"] = round(ready["rss"] / 1024, 1)
        r["pss_ready_mib"] = round(ready["pss"] / 1024, 1)
        r["primary_rss_ready_mib"] = round(ready["primary_rss"] / 1024, 1)
        if n:
            r["kib_per_session_rss"] = round((ready["rss"] - base_rss) / n, 2)
            r["kib_per_session_pss"] = round((ready["pss"] - base_pss) / n, 2)
            r["primary_kib_per_session"] = round((ready["primary_rss"] - base_primary_rss) / n, 2)
    print(json.dumps(r), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
