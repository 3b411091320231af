#!/usr/bin/env python3
"""perf_summary.py NAME=PID... < `perf script -F comm,pid,tid,ip,sym,dso` output

Summarises a call-graph profile per process (bench/profile.sh): for each named PID
  * where its CPU went, by category of the sampled (leaf) frame: kernel network stack, kernel scheduler and
    wake-ups, other kernel, malloc/free, gRPC core, protobuf, Abseil, Boost.Asio, hiredis, Doorman's own code,
    other libc/libstdc++;
  * the top functions by self time (the leaf frame);
  * the top Doorman functions (namespace doorman::) by inclusive time (anywhere on the stack).
Percentages are of that process's samples. (`perf report --pid` gives wrong per-process shares with perf 6.1 on
this kernel, hence this script.)
"""
import collections
import re
import sys

KERNEL_NET = re.compile(r"tcp|ip_|ipv4|skb|sock|__dev_|dev_hard|netif|net_rx|loopback|__napi|sk_|inet|"
                        r"__netif|process_backlog|nf_|__sys_sendto|__sys_recvfrom|sendmsg|recvmsg")
KERNEL_SCHED = re.compile(r"schedule|finish_task_switch|futex|try_to_wake_up|wake_up|ttwu|enqueue|dequeue|"
                          r"pick_next|update_curr|hrtimer|__switch_to|_raw_spin_unlock_irq")


def category(sym, dso):
    if dso == "[kernel.kallsyms]":
        if KERNEL_SCHED.search(sym):
            return "kernel: scheduler, wake-ups, futex"
        if KERNEL_NET.search(sym):
            return "kernel: TCP/loopback"
        if "epoll" in sym or "ep_" in sym:
            return "kernel: epoll"
        return "kernel: other (syscall entry/exit, copies, timers)"
    if re.search(r"malloc|free|_int_|operator new|operator delete|cfree|tcache", sym):
        return "malloc/free"
    if "libgrpc" in dso or "libgpr" in dso or "libaddress_sorting" in dso or "libupb" in dso:
        return "gRPC"
    if "libprotobuf" in dso or "google::protobuf" in sym:
        return "protobuf"
    if "libabsl" in dso or sym.startswith("absl::"):
        return "Abseil (mutexes, time)"
    if "libhiredis" in dso:
        return "hiredis"
    if "boost::asio" in sym:
        return "Boost.Asio"
    if "doorman" in sym or dso.startswith("doorman-"):
        return "Doorman code"
    if "libc.so" in dso or "libstdc++" in dso or "ld-linux" in dso or re.match(r"__mem|__str|std::", sym):
        return "libc/libstdc++ (other)"
    return "other: " + dso


def samples(stream):
    """Yields (pid, [(sym, dso), ...] leaf first) for each sample."""
    head, frames, ips = None, [], []
    for line in stream:
        if not line.strip():
            if head is not None:
                yield head, frames
            head, frames, ips = None, [], []
            continue
        if not line[0].isspace():
            m = re.search(r"\s(\d+)/\d+\s*$", line)
            head = int(m.group(1)) if m else None
            frames, ips = [], []
            continue
        m = re.match(r"\s*([0-9a-f]+)\s+(.*)\s+\(([^()]*)\)\s*$", line)
        if m:
            ip, sym, dso = m.group(1), m.group(2).strip(), m.group(3).rsplit("/", 1)[-1]
            # Inlined frames come before the function they were inlined into, at the same address: they belong
            # to its object. (perf sometimes drops that function; then the object stays "inlined".)
            if dso != "inlined":
                for i in range(len(frames) - 1, -1, -1):
                    if frames[i][1] != "inlined" or ips[i] != ip:
                        break
                    frames[i] = (frames[i][0], dso)
            frames.append((sym, dso))
            ips.append(ip)
    if head is not None:
        yield head, frames


def short(sym, width=110):
    sym = re.sub(r"\(.*", "", sym) if len(sym) > width else sym
    return sym if len(sym) <= width else sym[:width - 1] + "…"


def main():
    names = dict(a.split("=", 1)[::-1] for a in sys.argv[1:])
    names = {int(k): v for k, v in names.items()}
    total = collections.Counter()
    cats = collections.defaultdict(collections.Counter)
    selfs = collections.defaultdict(collections.Counter)
    incl = collections.defaultdict(collections.Counter)
    for pid, frames in samples(sys.stdin):
        if pid not in names or not frames:
            continue
        total[pid] += 1
        sym, dso = frames[0]
        cats[pid][category(sym, dso)] += 1
        selfs[pid][f"{short(sym)} [{dso}]"] += 1
        seen = set()
        for s, _ in frames:
            m = re.match(r"(doorman::[\w:~]+)", s)  # Doorman's own functions, not templates instantiated for them
            if m and m.group(1) not in seen:
                seen.add(m.group(1))
                incl[pid][m.group(1)] += 1
    for pid, name in names.items():
        n = total[pid]
        if not n:
            continue
        print(f"\n## {name} (pid {pid}): {n} samples\n")
        print("by category of the sampled frame:")
        for c, k in cats[pid].most_common():
            print(f"  {100 * k / n:5.1f}%  {c}")
        print("\ntop functions by self time:")
        for s, k in selfs[pid].most_common(20):
            print(f"  {100 * k / n:5.1f}%  {s}")
        if incl[pid]:
            print("\ntop Doorman functions by inclusive time:")
            for s, k in incl[pid].most_common(25):
                print(f"  {100 * k / n:5.1f}%  {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
