#!/usr/bin/env python3
"""reaper.py COMMAND [ARGS...]: runs one server under its own session, as a child subreaper.

bench/run.sh starts every server process through this wrapper so that
  * the server and everything it forks (Postfix's master and its smtpd/cleanup/qmgr/smtp children, Haraka's
    cluster workers) share one session id, which is our PID: bench/measure.py sums CPU and memory over it
    (and leaves this wrapper out);
  * on SIGTERM/SIGINT the server gets SIGTERM, and once it has exited every process still left in the session
    gets SIGKILL and is reaped here: nothing is orphaned to PID 1 (which reaps nobody in this container).
Exits with the server's exit status.
"""
import ctypes
import os
import signal
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def session_members(sid):
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        if int(raw[raw.rindex(")") + 2:].split()[3]) == sid:
            out.append(int(name))
    return out


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        os.setsid()
    except OSError:
        pass  # already a session leader
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp(sys.argv[1], sys.argv[1:])
    stopping = {"at": None}

    def on_signal(_sig, _frame):
        if stopping["at"] is None:
            stopping["at"] = time.monotonic()
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    child_done = False
    while True:
        try:
            pid, st = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == child:
            child_done = True
            status = os.waitstatus_to_exitcode(st)
        if pid == 0:
            # A server that ignores SIGTERM for 15 s, or leftovers after it exited: SIGKILL the session.
            if child_done or (stopping["at"] is not None and time.monotonic() - stopping["at"] > 15):
                for p in session_members(os.getsid(0)):
                    try:
                        os.kill(p, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            time.sleep(0.05)
    return status if status >= 0 else 128 - status


if __name__ == "__main__":
    sys.exit(main())
