"""CPU priority of msgrelay's processes: verification calls and the API go first on a busy machine, throughput work
(bulk sends, report polls, webhook deliveries) yields, and everything runs at full speed on an idle one."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from models.statuses import Queue

#: how far each queue's worker steps forward or back (docker-compose.yml gives the same order as `cpu_shares`): the
#: otp worker raised (where permitted: CAP_SYS_NICE), sends and reports below it, webhook deliveries below those
#: (events catch up when the load drops)
QUEUE_NICE: dict[str, int] = {Queue.OTP: -10, Queue.BULK: 10, Queue.POLL: 10, Queue.WEBHOOKS: 19}
#: the API takes verification calls: raised as the otp worker is
API_NICE = -10
#: the embedded Redis carries every step of a verification call (its count, its publish, its delivery to the otp
#: worker) and little CPU: raised as the API is (compose gives its container the API's weight)
REDIS_NICE = API_NICE
#: a kernel that shares the CPU between sessions (autogroups) first; then every new session has an autogroup
AUTOGROUPS = Path("/proc/self/autogroup").exists()


def session_niceness(pid: int | str = "self") -> int | None:
    """The niceness of a process's session (its autogroup); None without autogroups or in the root one.

    The file reads "/autogroup-42 nice 10"; it is missing on a kernel without autogroups and empty for a process of
    the root autogroup (init's session: a container's first process, and what it starts without a session of its
    own). Every process that starts a session (setsid) gets an autogroup of its own."""
    try:
        fields = Path(f"/proc/{pid}/autogroup").read_text().split()
    except OSError:
        return None
    return int(fields[-1]) if fields else None


def nice_argv(queue: str | None = None) -> list[str]:
    """The options that give a `msgrelay worker` of `queue` its niceness (with no queue: `msgrelay api`'s)."""
    nice = API_NICE if queue is None else QUEUE_NICE[queue]
    return ["--nice", str(nice)] if nice else []


def renice(pid: int, nice: int) -> str:
    """Give another process (one that leads its session, as the Supervisor starts them) niceness `nice`, its
    session's too; say what changed (raising needs CAP_SYS_NICE: without, it stays)."""
    try:  # Linux keeps a niceness per thread: the main one first (threads it starts later inherit it), then the rest
        os.setpriority(os.PRIO_PROCESS, pid, nice)
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
                os.setpriority(os.PRIO_PROCESS, int(task.name), nice)
    except PermissionError:
        return f"niceness unchanged (raising it by {-nice} needs CAP_SYS_NICE)" if nice < 0 else "niceness unchanged"
    except (ProcessLookupError, FileNotFoundError):  # it has ended already: whoever waits for it says so
        return "niceness unchanged (the process has ended)"
    if os.getsid(pid) != pid or session_niceness(pid) is None:  # another session's niceness is not its own to set
        return f"niceness {nice}"
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError as exc:
        return f"niceness {nice} (its session's: not set, {exc.strerror})"
    return f"niceness {nice}, its session's too"


def change_priority(nice: int) -> str:
    """Lower this process's CPU priority by `nice`, or raise it for a negative `nice` (that needs CAP_SYS_NICE:
    without, it stays), before it starts threads or processes (they inherit it); say what changed.

    On Linux with autogroups (`kernel.sched_autogroup_enabled`, the default of most distributions) the CPU is
    first shared between sessions, by each session's own niceness: a process's niceness then only orders it
    among the processes of its session. So a process that leads its session (`msgrelay up`, the demo and the
    benchmarks start each one so; systemd does the same for a service) sets its session's niceness as well.
    A process sharing a terminal's session leaves that alone, since it would change the shell and its other
    jobs; in a container, the CPU weight (`cpu_shares` in compose) is what orders the containers. A raised
    process raises its PostgreSQL backends too, when the server is on this machine (models.backend_priority)."""
    try:
        os.nice(nice)
    except PermissionError:  # raising needs CAP_SYS_NICE (root, or a unit's AmbientCapabilities); lowering never does
        return f"niceness unchanged (raising it by {-nice} needs CAP_SYS_NICE)"
    if os.getsid(0) != os.getpid() or not AUTOGROUPS:
        return f"niceness {nice}"
    try:
        Path("/proc/self/autogroup").write_text(str(nice))
    except OSError as exc:  # a kernel that refuses: the process's own niceness still holds
        return f"niceness {nice} (its session's: not set, {exc.strerror})"
    return f"niceness {nice}, its session's too"
