"""misc: the kernel's name (uname), the hostname, and a wall-clock offset.

Options: sysname, release, version, machine, nodename (alias: hostname),
domainname, time_offset (seconds, may be negative or fractional).

The hostname lives in the view: `hostname NEW` (sethostname) inside it
changes what uname shows there and nowhere else.  /proc/sys/kernel/hostname
is a file and is not changed (that needs the file-system modules).

The time offset moves CLOCK_REALTIME, CLOCK_REALTIME_COARSE,
CLOCK_REALTIME_ALARM and CLOCK_TAI, gettimeofday and time; monotonic clocks
are untouched.  Programs read the clock through the vDSO without a system
call, so programs started in the view get no vDSO while this module is
loaded with an offset.  A process that was already running when the module
was loaded keeps its vDSO, and sees the real time until it execs.
"""
import errno
import os
import struct
import time

from umview_py import Claims, Module, ModuleError, Option, SyscallError

REALTIME_CLOCKS = frozenset({0, 5, 8, 11})  # REALTIME, _COARSE, _ALARM, TAI
UTS_LEN = 65
FIELDS = ("sysname", "nodename", "release", "version", "machine", "domainname")


def _domainname():
    try:
        with open("/proc/sys/kernel/domainname") as f:
            return f.read().strip()
    except OSError:
        return "(none)"


class Misc(Module):
    name = "misc"
    description = "uname fields, hostname and a wall-clock offset"
    options = {
        "sysname": Option(str, None, "uname -s"),
        "release": Option(str, None, "kernel release shown by uname -r", cli="--uname-release"),
        "version": Option(str, None, "kernel version shown by uname -v", cli="--uname-version"),
        "machine": Option(str, None, "machine shown by uname -m", cli="--uname-machine"),
        "nodename": Option(str, None, "host name (uname -n, hostname)", cli="--hostname"),
        "hostname": Option(str, None, "same as nodename"),
        "domainname": Option(str, None, "NIS domain name"),
        "time_offset": Option(float, 0.0, "seconds added to the wall clock", cli="--time-offset"),
    }

    def __init__(self, **options):
        super().__init__(**options)
        if self.config["hostname"] is not None and self.config["nodename"] is None:
            self.config["nodename"] = self.config["hostname"]
        for key in FIELDS:
            value = self.config.get(key)
            if value is not None and len(value.encode()) >= UTS_LEN:
                raise ModuleError(f"module misc: {key} is longer than {UTS_LEN - 1} bytes")
        self.offset_ns = int(round(self.config["time_offset"] * 1e9))
        self._real_domainname = _domainname()
        self._packed = (None, b"")

    def claims(self):
        c = Claims(syscalls={"uname", "sethostname", "setdomainname"})
        if self.offset_ns:
            c.syscalls |= {"clock_gettime", "gettimeofday", "time"}
            c.arg_in["clock_gettime"] = (0, REALTIME_CLOCKS)
            c.no_vdso = True
        return c

    def describe(self):
        return " ".join(f"{k}={self.config[k]}" for k in FIELDS + ("time_offset",)
                        if self.config.get(k) not in (None, 0.0))

    # -- names ----------------------------------------------------------
    def uname(self, call):
        # What the layers below say (a parent view's misc), else the host.
        if call.next() is None:
            real = tuple(os.uname()) + (self._real_domainname,)
        else:
            raw = call.read(call.args[0], UTS_LEN * len(FIELDS))
            real = tuple(os.fsdecode(raw[i * UTS_LEN:(i + 1) * UTS_LEN].split(b"\0")[0])
                         for i in range(len(FIELDS)))
        # The answer is packed once and reused while neither the base nor
        # our overrides change: this call is hot.
        key = (real, tuple(map(self.config.get, FIELDS)))
        if self._packed[0] != key:
            values = dict(zip(FIELDS, real))
            for k in FIELDS:
                if self.config.get(k) is not None:
                    values[k] = self.config[k]
            self._packed = (key, b"".join(struct.pack(f"{UTS_LEN}s", os.fsencode(values[k])[:UTS_LEN - 1])
                                          for k in FIELDS))
        call.write(call.args[0], self._packed[1])
        return 0

    def _set_name(self, call, key):
        length = call.arg(1, bits=32)  # the kernel's len is an int
        if length < 0 or length >= UTS_LEN:
            raise SyscallError(errno.EINVAL)
        self.config[key] = os.fsdecode(call.read(call.args[0], length).split(b"\0")[0])
        return 0

    def sethostname(self, call):
        return self._set_name(call, "nodename")

    def setdomainname(self, call):
        return self._set_name(call, "domainname")

    # -- clocks ---------------------------------------------------------
    # Each clock handler first asks the layers below (call.next()): a misc
    # module of a parent view may shift the clock too, and offsets add up.
    def _now_ns(self, call, clock, read_back):
        if call.next() is None:
            try:
                return time.clock_gettime_ns(clock) + self.offset_ns
            except OSError as exc:  # e.g. CLOCK_REALTIME_ALARM without an RTC
                raise SyscallError(exc.errno) from None
        return read_back() + self.offset_ns

    def clock_gettime(self, call):
        clock = call.arg(0, bits=32)
        if clock not in REALTIME_CLOCKS:
            return call.next()

        def read_back():
            sec, nsec = struct.unpack("<qq", call.read(call.args[1], 16))
            return sec * 1_000_000_000 + nsec

        ns = self._now_ns(call, clock, read_back)
        call.write(call.args[1], struct.pack("<qq", *divmod(ns, 1_000_000_000)))
        return 0

    def gettimeofday(self, call):
        def read_back():
            sec, usec = struct.unpack("<qq", call.read(call.args[0], 16))
            return sec * 1_000_000_000 + usec * 1000

        ns = self._now_ns(call, time.CLOCK_REALTIME, read_back if call.args[0] else lambda: 0)
        sec, rest = divmod(ns, 1_000_000_000)
        if call.args[0]:
            call.write(call.args[0], struct.pack("<qq", sec, rest // 1000))
        if call.args[1]:
            call.write(call.args[1], struct.pack("<ii", 0, 0))
        return 0

    def time(self, call):
        lower = call.next()
        if lower is None:
            sec = (time.time_ns() + self.offset_ns) // 1_000_000_000
        else:
            sec = lower + self.offset_ns // 1_000_000_000
        if call.args[0]:
            call.write(call.args[0], struct.pack("<q", sec))
        return sec
