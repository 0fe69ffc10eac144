# gdb helpers for uring_machine: `source` this file in gdb, then run `uring-machine`.
#
#   gdb -p PID -ex 'source .../uring_machine/gdb/uring_machine.py' -ex uring-machine
#   gdb /usr/bin/ruby core.1234 -ex 'source ...' -ex uring-machine
#
# Lists each thread's machine: its fibers and what each waits on, the run queue, the ops in
# flight and the ring's queues. It reads only memory: the extension keeps a registry of
# #[repr(C)] records under the symbol `uring_machine_gdb_registry`
# (ext/uring_machine/src/machine/debug_record.rs); no debug info is needed, and it works the
# same on a live process and on a core file.
import os
import re
import struct
import time

import gdb

MAGIC = 0x554D5F4744425631  # "UM_GDBV1"
VERSION = 2

# Linux io_uring opcode numbers (kernel ABI).
OPCODES = [
    "nop", "readv", "writev", "fsync", "read_fixed", "write_fixed", "poll_add", "poll_remove",
    "sync_file_range", "sendmsg", "recvmsg", "timeout", "timeout_remove", "accept",
    "async_cancel", "link_timeout", "connect", "fallocate", "openat", "close", "files_update",
    "statx", "read", "write", "fadvise", "madvise", "send", "recv", "openat2", "epoll_ctl",
    "splice", "provide_buffers", "remove_buffers", "tee", "shutdown", "renameat", "unlinkat",
    "mkdirat", "symlinkat", "linkat", "msg_ring", "fsetxattr", "setxattr", "fgetxattr",
    "getxattr", "socket", "uring_cmd", "send_zc", "sendmsg_zc", "read_multishot", "waitid",
    "futex_wait", "futex_wake", "futex_waitv", "fixed_fd_install", "ftruncate", "bind", "listen",
]
OP_TIMEOUT = 11

# ring/op.rs: State and Kind (both repr(u8)).
SLOT_FREE, SLOT_IN_FLIGHT, SLOT_DONE = 0, 1, 2
KIND_AWAIT, KIND_MULTISHOT, KIND_TIMEOUT, KIND_WAKE_TIMER, KIND_DETACHED = 0, 1, 2, 3, 4

# debug_record.rs: Why, and how its `what` (a VALUE) is named.
WHY = {
    1: ("suspended", ""),
    2: ("joining", "fiber %#x"),
    3: ("receiving from its mailbox", ""),
    4: ("sending to a full mailbox", ""),
    5: ("blocked", "on %#x (a Mutex, Queue, ...)"),
    6: ("sleeping", ""),
    7: ("closing the scheduler, waiting for its fibers", ""),
}


def read(addr, size):
    return bytes(gdb.selected_inferior().read_memory(addr, size))


def u32(addr):
    return struct.unpack("<I", read(addr, 4))[0]


def u64(addr):
    return struct.unpack("<Q", read(addr, 8))[0]


def opname(code):
    return OPCODES[code] if code < len(OPCODES) else "opcode %d" % code


def secs(ns):
    return "%.1f s" % (ns / 1e9)


class Registry:
    """The header of `uring_machine_gdb_registry` and the machines it lists."""

    def __init__(self):
        sym = gdb.lookup_global_symbol("uring_machine_gdb_registry") or gdb.lookup_static_symbol(
            "uring_machine_gdb_registry"
        )
        if sym is not None:
            self.addr = int(sym.value().address)
        else:
            # The .so carries no type info for it: take the ELF symbol's address.
            self.addr = int(gdb.parse_and_eval("(unsigned long)&uring_machine_gdb_registry"))
        magic, version, capacity, self.nil = struct.unpack("<QIIQ", read(self.addr, 24))
        if magic != MAGIC or version != VERSION:
            raise gdb.GdbError("uring_machine_gdb_registry: unknown layout (magic %#x, version %d)" % (magic, version))
        slot = struct.unpack("<10I", read(self.addr + 24, 40))
        names = ["size", "state", "kind", "fiber", "fd", "opcode", "parked", "cancel", "submitted", "deadline"]
        self.slot = dict(zip(names, slot))
        self.runnable_size, self.runnable_fiber = struct.unpack("<II", read(self.addr + 64, 8))
        self.overflow = u64(self.addr + 72)
        machines = struct.unpack("<%dQ" % capacity, read(self.addr + 80, 8 * capacity))
        self.machines = [m for m in machines if m]


class Machine:
    """One MachineRecord (debug_record.rs), read whole."""

    def __init__(self, registry, addr):
        self.registry = registry
        self.addr = addr
        fields = struct.unpack("<iiiIQQQQQQQQQQQQqQQ", read(addr, 136))
        (self.pid, self.tid, self.ring_fd, _pad, self.thread, self.running, self.clock_ns,
         self.sq_submitted, self.cq_reaped, slots, rq_a, rq_b, rq_a_len, rq_b_len,
         susp, susp_len, self.realtime_offset_ns, names, names_len) = fields
        self.slots = self.read_slots(slots)
        self.runqueue = self.read_runqueue([(rq_a, rq_a_len), (rq_b, rq_b_len)])
        self.suspensions = self.read_suspensions(susp, susp_len)
        self.names = self.read_names(names, names_len)

    def read_slots(self, view):
        if not view:
            return []
        ptr, length = struct.unpack("<QQ", read(view, 16))
        lay = self.registry.slot
        table = read(ptr, length * lay["size"]) if length else b""
        slots = []
        for i in range(length):
            raw = table[i * lay["size"]:(i + 1) * lay["size"]]
            slot = {
                "index": i,
                "state": raw[lay["state"]],
                "kind": raw[lay["kind"]],
                "fiber": struct.unpack_from("<Q", raw, lay["fiber"])[0],
                "fd": struct.unpack_from("<i", raw, lay["fd"])[0],
                "opcode": raw[lay["opcode"]],
                "parked": raw[lay["parked"]],
                "cancel": raw[lay["cancel"]],
                "submitted": struct.unpack_from("<Q", raw, lay["submitted"])[0],
                "deadline": struct.unpack_from("<Q", raw, lay["deadline"])[0],
            }
            if slot["state"] != SLOT_FREE:
                slots.append(slot)
        return slots

    def read_runqueue(self, parts):
        reg = self.registry
        fibers = []
        for ptr, length in parts:
            entries = read(ptr, length * reg.runnable_size) if length else b""
            for i in range(length):
                fibers.append(struct.unpack_from("<Q", entries, i * reg.runnable_size + reg.runnable_fiber)[0])
        return fibers

    def read_suspensions(self, ptr, length):
        entries = []
        table = read(ptr, 32 * length) if length else b""
        for i in range(length):
            fiber, what, since, why, _pad = struct.unpack_from("<QQQII", table, 32 * i)
            if why:
                entries.append({"fiber": fiber, "what": what, "since": since, "why": why})
        return entries


    def read_names(self, ptr, length):
        """fiber -> its name (spin(name:), Fiber#name=), for the fibers that have one."""
        names = {}
        table = read(ptr, 24 * length) if length else b""
        for i in range(length):
            fiber, name, size = struct.unpack_from("<QQQ", table, 24 * i)
            names[fiber] = read(name, size).decode("utf-8", "backslashreplace") if size else ""
        return names


def core_file():
    """The core file's path, or None for a live process."""
    info = gdb.execute("info target", to_string=True)
    match = re.search(r"Local core dump file:\s*`([^']+)'", info)
    return match.group(1) if match else None


def core_now(path, machines):
    """CLOCK_MONOTONIC when the core was written, from its mtime (None if unknown): a copy
    that did not keep the mtime shows later times."""
    try:
        mtime_ns = os.stat(path).st_mtime_ns
    except OSError:
        return None
    return max([mtime_ns - m.realtime_offset_ns for m in machines] + [m.clock_ns for m in machines])


def kernel_ring(pid, fd):
    """The kernel's view of the ring's queues (a live process only)."""
    try:
        with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
            info = dict(line.split(":", 1) for line in f if ":" in line and not line.startswith(" "))
    except OSError:
        return None
    get = lambda k: info.get(k, "?").strip()
    return "SQ head %s tail %s, CQ head %s tail %s" % (get("SqHead"), get("SqTail"), get("CqHead"), get("CqTail"))


def gdb_threads():
    threads = {}
    for t in gdb.selected_inferior().threads():
        threads[t.ptid[1]] = t.num
    return threads


class UringMachineCommand(gdb.Command):
    """List each thread's UringMachine: its fibers and what each waits on, the run queue, the
ops in flight and the ring's queues. Works on a live process and on a core file."""

    def __init__(self):
        super().__init__("uring-machine", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        try:
            registry = Registry()
        except gdb.error as e:
            raise gdb.GdbError("no uring_machine in this process (%s)" % e)
        core = core_file()
        pid = gdb.selected_inferior().pid
        machines, unreadable = [], []
        for addr in registry.machines:
            try:
                machines.append(Machine(registry, addr))
            except gdb.MemoryError as e:
                # Caught mid-change (a table being reallocated), or a damaged process.
                unreadable.append("machine %#x: unreadable (%s)" % (addr, e))
        own = [m for m in machines if not pid or m.pid == pid]
        out = ["%d machine(s) in process %d%s" % (len(own), pid, " (core file)" if core else "")]
        if registry.overflow:
            out.append("(%d more machine(s) were made than the registry lists)" % registry.overflow)
        if core:
            # The core holds no clock: its mtime says when it was written, else the latest
            # ring enter it shows is the best guess.
            now = core_now(core, machines)
            if now is None:
                now = max([m.clock_ns for m in machines] or [0])
                out.append("times as of the last ring enter in the core (its file has no mtime)")
            else:
                out.append("times as of the core file's mtime")
        else:
            now = time.monotonic_ns()
        threads = gdb_threads()
        for m in own:
            out.extend(self.machine(registry, m, now, core, threads))
        out.extend(unreadable)
        gdb.write("\n".join(out) + "\n")

    def machine(self, registry, m, now, core, threads):
        nil = registry.nil
        out = []
        gdb_thread = threads.get(m.tid)
        where = "gdb thread %d, " % gdb_thread if gdb_thread else ""
        out.append("machine %#x: %sLWP %d, Ruby Thread %#x, ring fd %d" % (m.addr, where, m.tid, m.thread, m.ring_fd))
        kernel = None if core else kernel_ring(m.pid, m.ring_fd)
        if kernel:
            out.append("  ring (kernel): %s" % kernel)
        when = "" if core else ", last enter returned %s ago" % secs(max(now - m.clock_ns, 0))
        out.append("  ring (machine): %d SQE(s) submitted, %d CQE(s) reaped in all%s" % (m.sq_submitted, m.cq_reaped, when))
        fibers = {}

        def note(fiber, text):
            if fiber and fiber != nil:
                fibers.setdefault(fiber, []).append(text)

        note(m.running, "current (the thread runs on its stack)")
        for s in m.suspensions:
            text, what = WHY.get(s["why"], ("suspended", ""))
            if what and s["what"] != nil:
                text += " " + what % s["what"]
            note(s["fiber"], "%s, for %s" % (text, secs(max(now - s["since"], 0))))
        for s in m.slots:
            if s["kind"] == KIND_DETACHED:
                continue
            note(s["fiber"], self.op_wait(s, now))
        for f in m.runqueue:
            note(f, "in the run queue")
        out.append("  fibers (%d):" % len(fibers))
        for fiber, texts in fibers.items():
            name = ' "%s"' % m.names[fiber] if fiber in m.names else ""
            out.append("    fiber %#x%s: %s" % (fiber, name, "; ".join(texts)))
        queue = ", ".join("%#x" % f for f in m.runqueue) if m.runqueue else "empty"
        out.append("  run queue: %s" % queue)
        out.append("  ops in flight (%d):" % len(m.slots))
        for s in m.slots:
            out.append("    " + self.op_line(s, now, nil))
        return out

    def op_wait(self, s, now):
        if s["opcode"] == OP_TIMEOUT:
            left = secs(max(s["deadline"] - now, 0)) if s["deadline"] else "never"
            if s["kind"] == KIND_TIMEOUT:
                return "under a timeout that fires in %s" % left
            if s["kind"] == KIND_WAKE_TIMER:
                return "timer fires in %s" % left
            return "sleep, %s left" % left
        fd = " fd %d" % s["fd"] if s["fd"] >= 0 else ""
        state = "waiting on" if s["state"] == SLOT_IN_FLIGHT else "completed"
        return "%s %s%s, for %s" % (state, opname(s["opcode"]), fd, secs(max(now - s["submitted"], 0)))

    def op_line(self, s, now, nil):
        parts = ["op %d: %s" % (s["index"], opname(s["opcode"]))]
        if s["fd"] >= 0:
            parts.append("fd %d" % s["fd"])
        kinds = {KIND_MULTISHOT: "multishot", KIND_TIMEOUT: "timeout", KIND_WAKE_TIMER: "wake timer", KIND_DETACHED: "detached"}
        if s["kind"] in kinds:
            parts.append(kinds[s["kind"]])
        parts.append("done" if s["state"] == SLOT_DONE else "in flight")
        if s["cancel"]:
            parts.append("cancel requested")
        if s["fiber"] and s["fiber"] != nil:
            parts.append("fiber %#x" % s["fiber"])
        parts.append("submitted %s ago" % secs(max(now - s["submitted"], 0)))
        if s["deadline"]:
            parts.append("fires in %s" % secs(max(s["deadline"] - now, 0)))
        return ", ".join(parts)


UringMachineCommand()
