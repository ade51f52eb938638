"""The net module without ptrace: address parsing and rewriting, option
values, the policy handlers on a FakeProcess, bind/getsockname on a real
local socket standing for the program's, and the proxy handshakes over a
socketpair."""
import errno
import inspect
import ipaddress
import os
import socket
import struct
import threading

import pytest
import trio

from umview_py import ModuleError
from umview_py.testing import FakeProcess, settle, settle_now
from umview_modules import net
from umview_modules.net import (AF_INET, AF_INET6, Addr, Net, ProxyFailure, SocketIO, parse_cidrs,
                                parse_hostport, parse_port_map, parse_sockaddr)

ip = ipaddress.ip_address


def sin(host, port):
    return struct.pack("<H", AF_INET) + struct.pack("!H", port) + socket.inet_aton(host) + bytes(8)


def sin6(host, port, scope=0):
    return (struct.pack("<H", AF_INET6) + struct.pack("!HI", port, 0) + socket.inet_pton(AF_INET6, host)
            + struct.pack("<I", scope))


# ----------------------------------------------------------------------
# addresses

def test_parse_and_pack_roundtrip():
    a = parse_sockaddr(sin("127.0.0.1", 8000))
    assert (a.family, a.ip, a.port) == (AF_INET, ip("127.0.0.1"), 8000)
    assert a.pack() == sin("127.0.0.1", 8000)
    b = parse_sockaddr(sin6("::1", 443, scope=3))
    assert (b.family, b.ip, b.port, b.scope_id) == (AF_INET6, ip("::1"), 443, 3)
    assert b.pack() == sin6("::1", 443, 3)
    assert parse_sockaddr(sin6("::1", 443)[:24]).scope_id == 0      # RFC 2133 length
    assert b.replace(port=80).pack(24) == sin6("::1", 80)[:24]


def test_parse_refuses_what_the_kernel_refuses():
    assert parse_sockaddr(b"") is None
    assert parse_sockaddr(sin("1.2.3.4", 1)[:15]) is None            # too short for AF_INET
    assert parse_sockaddr(sin6("::1", 1)[:23]) is None
    assert parse_sockaddr(struct.pack("<H", socket.AF_UNIX) + b"/tmp/x\0") is None
    assert parse_sockaddr(struct.pack("<H", 0) + bytes(14)) is None   # AF_UNSPEC


@pytest.mark.parametrize("text,loop,wild", [
    ("127.0.0.1", True, False), ("127.9.8.7", True, False), ("::1", True, False),
    ("::ffff:127.0.0.1", True, False), ("0.0.0.0", False, True), ("::", False, True),
    ("::ffff:0.0.0.0", False, True), ("10.1.2.3", False, False), ("::2", False, False),
    ("2001:db8::1", False, False), ("::ffff:10.0.0.1", False, False),
])
def test_loopback_and_wildcard(text, loop, wild):
    a = Addr(AF_INET if "." in text and ":" not in text else AF_INET6, ip(text), 1)
    assert (a.is_loopback, a.is_wildcard, a.is_local) == (loop, wild, loop or wild)


def test_in_family():
    a = Addr(AF_INET, ip("127.0.0.1"), 1080)
    m = a.in_family(AF_INET6)
    assert m.ip == ip("::ffff:127.0.0.1") and m.port == 1080 and m.v4 == a.ip
    assert m.in_family(AF_INET) == a
    assert Addr(AF_INET6, ip("::1"), 1).in_family(AF_INET) is None
    # a v4 address in an AF_INET6 sockaddr packs as v4-mapped
    assert Addr(AF_INET6, ip("127.0.0.1"), 5).pack() == sin6("::ffff:127.0.0.1", 5)


# ----------------------------------------------------------------------
# option values

def test_port_map_values():
    assert parse_port_map("8000:18000") == {8000: 18000}
    assert parse_port_map("1:2;3:4+5:6,7:8") == {1: 2, 3: 4, 5: 6, 7: 8}
    assert str(parse_port_map("1:2;3:4")) == "1:2;3:4"
    for bad in ("", "8000", "8000:", ":1", "0:1", "1:65536", "a:b", "1:2;1:3", "1:5;2:5", "1:2:3"):
        with pytest.raises(ValueError):
            parse_port_map(bad)


def test_hostport_values():
    assert parse_hostport("127.0.0.1:1080") == ("127.0.0.1", 1080)
    assert parse_hostport("[::1]:1080") == ("::1", 1080)
    assert parse_hostport("proxy.example:3128") == ("proxy.example", 3128)
    assert parse_hostport("10.0.0.1", 1080) == ("10.0.0.1", 1080)
    for bad in ("", ":80", "::1:1080", "[::1:1080", "[::1]x", "h:0", "h:99999", "h:port", "h"):
        with pytest.raises(ValueError):
            parse_hostport(bad)


def test_proxy_values(monkeypatch):
    # names are resolved once, at load time (faked here: no lookup leaves the test)
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, port, type=0: [
        (socket.AF_INET6, type, 6, "", ("::1", port, 0, 0)),
        (socket.AF_INET, type, 6, "", ("127.0.0.1", port))] if host == "proxy.test" else [])
    p = net.parse_socks5("socks5://bob:pw@127.0.0.1:9050")
    assert (p.user, p.password, p.addr) == ("bob", "pw", Addr(AF_INET, ip("127.0.0.1"), 9050))
    assert str(p) == "bob:***@127.0.0.1:9050"
    assert net.parse_socks5("127.0.0.1").addr.port == 1080
    assert net.parse_http_proxy("http://[::1]:3128/").addr == Addr(AF_INET6, ip("::1"), 3128)
    assert net.parse_http_proxy("proxy.test:3128").addr == Addr(AF_INET, ip("127.0.0.1"), 3128)  # IPv4 first
    with pytest.raises(ValueError):
        net.parse_http_proxy("127.0.0.1")          # no default port for HTTP proxies
    with pytest.raises(ValueError):
        net.parse_socks5("bad host!:1080")


def test_cidr_values():
    assert parse_cidrs("") == () and parse_cidrs("none") == ()
    nets = parse_cidrs("10.0.0.0/8;192.168.1.7+[fd00::]/8")
    assert [str(n) for n in nets] == ["10.0.0.0/8", "192.168.1.7/32", "fd00::/8"]
    assert net.in_networks(Addr(AF_INET, ip("10.9.9.9"), 1), nets)
    assert net.in_networks(Addr(AF_INET6, ip("::ffff:10.9.9.9"), 1), nets)   # v4-mapped
    assert not net.in_networks(Addr(AF_INET, ip("11.0.0.1"), 1), nets)
    assert net.in_networks(Addr(AF_INET, ip("127.0.0.1"), 1), net.DEFAULT_NO_PROXY)
    for bad in ("10.0.0.0/33", "x", "1.2.3.4/8/8"):
        with pytest.raises(ValueError):
            parse_cidrs(bad)


def test_module_options():
    with pytest.raises(ModuleError, match="bad value for mode"):
        Net(mode="maybe")
    with pytest.raises(ModuleError, match="bad value for port_map"):
        Net(port_map="80")
    with pytest.raises(ModuleError, match="cannot be used together"):
        Net(socks5="127.0.0.1:1080", http_proxy="127.0.0.1:3128")
    with pytest.raises(ModuleError, match="proxy_timeout"):
        Net(proxy_timeout="-1")
    m = Net(mode="lo", port_map="80:8080", no_proxy="")
    assert m.describe() == 'mode=loopback port_map=80:8080 no_proxy=""'


def test_claims():
    assert Net().claims().syscalls == set()
    c = Net(mode="loopback").claims()
    assert {"socket", "bind", "listen", "connect", "sendto", "sendmsg", "sendmmsg"} <= c.syscalls
    assert "getpeername" not in c.syscalls
    idx, families = c.arg_in["socket"]
    assert idx == 0 and socket.AF_PACKET in families and socket.AF_UNIX not in families
    assert socket.AF_INET not in families and socket.AF_NETLINK in families
    assert {"bind", "connect", "getsockname", "getpeername"} <= Net(port_map="1:2").claims().syscalls
    c = Net(socks5="127.0.0.1:1080").claims()
    assert c.syscalls == {"connect", "getpeername", "getsockopt"}
    assert c.arg_in["getsockopt"] == (2, {socket.SO_ERROR})        # only SO_ERROR stops
    # calls that name an address stop, the others (send, recv, accept(fd, 0, 0)) run on
    for m in (Net(mode="loopback"), Net(port_map="1:2"), Net(socks5="127.0.0.1:1", proxy_dns="yes")):
        c = m.claims()
        assert c.arg_nonzero["sendto"] == 4 and "sendto" not in c.arg_in
    c = Net(port_map="1:2").claims()
    assert c.arg_nonzero == {"sendto": 4, "recvfrom": 4}
    assert {"sendmsg", "sendmmsg", "recvmsg", "recvmmsg"} <= c.syscalls and "accept4" not in c.syscalls
    c = Net(socks5="127.0.0.1:1", proxy_dns="yes").claims()
    assert {"sendto", "sendmsg", "recvfrom", "recvmsg", "connect"} <= c.syscalls and "accept" not in c.syscalls
    # connect is a plain handler, with a proxy too: the handshake starts on
    # the tracer thread and goes to trio (call.later) only when it must wait
    import inspect
    assert not inspect.iscoroutinefunction(Net(mode="deny").connect)
    assert not inspect.iscoroutinefunction(Net(port_map="1:2").connect)
    assert not inspect.iscoroutinefunction(Net(socks5="127.0.0.1:1").connect)


def test_claims_for_the_shim():
    """connect_map and socks5 are claimed only where the module's answer is
    that simple (no policy, no netcoop, no proxy with a port map; a SOCKS5
    proxy without credentials, proxy_dns or port map)."""
    assert Net(port_map="8000:18000+8001:18001").claims().connect_map == {8000: 18000, 8001: 18001}
    for m in (Net(), Net(port_map="1:2", mode="loopback"), Net(netcoop="yes"),
              Net(port_map="1:2", socks5="127.0.0.1:1080")):
        assert m.claims().connect_map is None
    ip, port, direct, timeout = Net(socks5="127.0.0.1:1080", no_proxy="10.0.0.0/8").claims().socks5
    assert (ip, port, timeout) == ("127.0.0.1", 1080, 30.0)
    assert direct == [ipaddress.ip_network("10.0.0.0/8")]
    assert Net(socks5="127.0.0.1:1080").claims().socks5[2] == list(net.DEFAULT_NO_PROXY)
    for m in (Net(socks5="a:b@127.0.0.1:1080"), Net(socks5="127.0.0.1:1080", proxy_dns="yes"),
              Net(http_proxy="127.0.0.1:3128"), Net(socks5="127.0.0.1:1080", port_map="1:2"),
              Net(socks5="127.0.0.1:1080", mode="loopback")):
        assert m.claims().socks5 is None


def test_socks_words():
    """Claims.socks5 as the shim reads it (umvcore.h, UMV_SHM_SOCKS_WORDS)."""
    from umview_py._core.hypervisor import _socks_words
    from umview_py._native import lib
    w = _socks_words(("::1", 1080, [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")], 2.5))
    assert len(w) == lib.UMV_SHM_SOCKS_WORDS
    assert w[:4] == [1, socket.AF_INET6, 1080, 2500] and w[8] == 2
    assert struct.pack("<4I", *w[4:8]) == ipaddress.ip_address("::1").packed
    assert w[9] == socket.AF_INET << 8 | 8 and struct.pack("<I", w[10]) == bytes([10, 0, 0, 0])
    assert w[14] == socket.AF_INET6 << 8 | 8 and struct.pack("<4I", *w[15:19])[:1] == b"\xfd"
    too_many = [ipaddress.ip_network(f"10.{i}.0.0/16") for i in range(lib.UMV_SHM_DIRECT + 1)]
    assert _socks_words(("127.0.0.1", 1, too_many, 1)) is None


# ----------------------------------------------------------------------
# the policy handlers

def test_socket_families():
    m, proc = Net(mode="deny"), FakeProcess()
    assert proc.call(m.socket, "socket", socket.AF_PACKET, socket.SOCK_RAW, 0) == -errno.EAFNOSUPPORT
    assert proc.call(m.socket, "socket", 40, socket.SOCK_STREAM, 0) == -errno.EAFNOSUPPORT  # vsock
    assert proc.call(m.socket, "socket", socket.AF_NETLINK, socket.SOCK_RAW, 0) == -errno.EPROTONOSUPPORT
    assert proc.call(m.socket, "socket", socket.AF_NETLINK, socket.SOCK_RAW, 15) is None  # uevents
    assert proc.call(m.socket, "socket", socket.AF_INET, socket.SOCK_STREAM, 0) is None


@pytest.mark.parametrize("mode,dest,expect", [
    ("deny", sin("127.0.0.1", 80), -errno.ENETUNREACH),
    ("deny", sin6("::1", 80), -errno.ENETUNREACH),
    ("loopback", sin("127.0.0.1", 80), None),
    ("loopback", sin("0.0.0.0", 80), None),
    ("loopback", sin6("::ffff:127.0.0.1", 80), None),
    ("loopback", sin("203.0.113.5", 80), -errno.ENETUNREACH),
    ("loopback", sin6("2001:db8::1", 80), -errno.ENETUNREACH),
    ("loopback", sin6("::ffff:203.0.113.5", 80), -errno.ENETUNREACH),
    ("deny", struct.pack("<H", socket.AF_UNIX) + b"/tmp/s\0", None),
    ("deny", struct.pack("<H", 0) + bytes(14), None),                  # AF_UNSPEC: disconnect
    ("deny", sin("10.0.0.1", 80)[:8], None),                           # the kernel says EINVAL
])
def test_connect_policy(mode, dest, expect):
    m, proc = Net(mode=mode), FakeProcess()
    buf = proc.alloc(len(dest), dest)
    assert proc.call(m.connect, "connect", 3, buf, len(dest)) == expect


def test_connect_bad_pointer():
    assert FakeProcess().call(Net(mode="deny").connect, "connect", 3, 0xdead000, 16) == -errno.EFAULT


def test_send_policy():
    m, proc = Net(mode="loopback"), FakeProcess()
    far, near = sin("203.0.113.5", 53), sin("127.0.0.53", 53)
    pfar, pnear = proc.alloc(16, far), proc.alloc(16, near)
    data = proc.alloc(4, b"data")
    assert proc.call(m.sendto, "sendto", 3, data, 4, 0, 0, 0) is None           # connected socket
    assert proc.call(m.sendto, "sendto", 3, data, 4, 0, pnear, 16) is None
    assert proc.call(m.sendto, "sendto", 3, data, 4, 0, pfar, 16) == -errno.ENETUNREACH

    def msghdr(name, namelen):
        return struct.pack("<QI4xQQQQi4x", name, namelen, 0, 0, 0, 0, 0)

    hdr = proc.alloc(56, msghdr(pfar, 16))
    assert proc.call(m.sendmsg, "sendmsg", 3, hdr, 0) == -errno.ENETUNREACH
    hdr = proc.alloc(56, msghdr(0, 0))
    assert proc.call(m.sendmsg, "sendmsg", 3, hdr, 0) is None
    table = proc.alloc(128, msghdr(pnear, 16) + bytes(8) + msghdr(pfar, 16) + bytes(8))
    assert proc.call(m.sendmsg, "sendmmsg", 3, table, 1, 0) is None
    assert proc.call(m.sendmsg, "sendmmsg", 3, table, 2, 0) == -errno.ENETUNREACH


# ----------------------------------------------------------------------
# bind and getsockname, on a local socket standing for the program's

@pytest.fixture
def program_socket(monkeypatch):
    """A real socket of ours plays the program's fd 3: the module's
    pidfd_getfd is replaced by a dup of it."""
    socks = {}
    made = []

    def make(family=socket.AF_INET, stype=socket.SOCK_STREAM):
        s = socket.socket(family, stype)
        socks[3] = s
        made.append(s)
        return s

    monkeypatch.setattr(net, "tracee_fd", lambda pid, tid, fd: os.dup(socks[fd].fileno()))
    monkeypatch.setattr(Net, "_inode", lambda self, call, fd: os.fstat(socks[fd].fileno()).st_ino
                        if fd in socks else None)
    yield make
    for s in made:
        s.close()


def _bind(m, proc, raw):
    buf = proc.alloc(len(raw), raw)
    return proc.call(m.bind, "bind", 3, buf, len(raw))


def _getsockname(m, proc, handler="getsockname", size=128):
    buf, lenp = proc.alloc(size), proc.alloc(4, struct.pack("<i", size))
    r = proc.call(getattr(m, handler), handler, 3, buf, lenp)
    n = struct.unpack("<i", proc.read(lenp, 4))[0]
    return r, parse_sockaddr(proc.read(buf, min(n, size))) if r == 0 else None, n


def test_bind_narrowed_to_loopback(program_socket):
    s = program_socket()
    m, proc = Net(mode="loopback"), FakeProcess()
    assert _bind(m, proc, sin("0.0.0.0", 0)) == 0
    assert s.getsockname()[0] == "127.0.0.1"            # really
    r, addr, n = _getsockname(m, proc)
    assert r == 0 and str(addr.ip) == "0.0.0.0" and addr.port == s.getsockname()[1] and n == 16
    assert _bind(m, proc, sin("192.0.2.1", 0)) == -errno.EADDRNOTAVAIL
    assert _bind(m, proc, sin("127.0.0.1", 0)) is None    # loopback: the kernel binds it


def test_bind_dual_stack_wildcard(program_socket):
    s = program_socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    m, proc = Net(mode="deny"), FakeProcess()
    assert _bind(m, proc, sin6("::", 0)) == 0
    assert s.getsockname()[0] == "::ffff:127.0.0.1"


def test_bind_port_map(program_socket):
    s = program_socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    host = probe.getsockname()[1]
    probe.close()
    m, proc = Net(port_map=f"8000:{host}"), FakeProcess()
    assert _bind(m, proc, sin("127.0.0.1", 8000)) == 0
    assert s.getsockname() == ("127.0.0.1", host)
    r, addr, _ = _getsockname(m, proc)
    assert r == 0 and addr.port == 8000
    # a buffer too small gets the first bytes and the real length, as from the kernel
    r, _, n = _getsockname(m, proc, size=8)
    assert r == 0 and n == 16


def test_bind_netcoop(program_socket):
    s = program_socket()
    m, proc = Net(netcoop="yes"), FakeProcess()
    assert _bind(m, proc, sin("127.0.0.1", 8000)) == 0
    host = s.getsockname()[1]
    assert host != 8000 and m.coop[(socket.SOCK_STREAM, 8000)] == host
    assert _getsockname(m, proc)[1].port == 8000
    assert _bind(m, proc, sin("127.0.0.1", 0)) is None      # port 0: nothing to do


def test_bind_privileged_port_needs_the_programs_capability(program_socket, monkeypatch):
    program_socket()
    monkeypatch.setattr(net, "_may_bind_privileged", lambda pid: False)
    m, proc = Net(port_map="8080:80"), FakeProcess()
    assert _bind(m, proc, sin("127.0.0.1", 8080)) == -errno.EACCES


# ----------------------------------------------------------------------
# connect rewriting: what the kernel sees, and that the program's memory
# is given back

def test_connect_port_map_rewritten(program_socket):
    """Alone (no parent view's module to ask): the connect runs in the
    kernel with the host port, from a sockaddr in the scratch area; the
    program's own sockaddr is left as it was."""
    m, proc = Net(port_map="8000:18000"), FakeProcess()
    raw = sin("127.0.0.1", 8000)
    buf = proc.alloc(16, raw)
    r, c = _call(proc, m.connect, "connect", 3, buf, 16)
    assert r is None and c.rewritten and c.args[2] == 16
    assert proc.read(c.args[1], 16) == sin("127.0.0.1", 18000)
    assert proc.read(buf, 16) == raw
    # not loopback: left to the kernel
    far = proc.alloc(16, sin("192.0.2.1", 8000))
    r, c = _call(proc, m.connect, "connect", 3, far, 16)
    assert r is None and not c.rewritten


class _Below:
    """A module of a parent view that wants connect, and says nothing."""

    name = "below"

    def __init__(self):
        self.seen = []

    def connect(self, call):
        self.seen.append(call.read(call.args[1], 16))
        return None


def _connect_with_below(m, proc, buf, below):
    c = proc.make_call("connect", 3, buf, 16)
    c._handlers = ((m, m.connect, False), (below, below.connect, False))
    c._pos = 0
    return m.connect(c)


def test_connect_port_map_under_a_parent(program_socket):
    """With a module below (a parent view), that module is asked with the
    rewritten sockaddr in the program's memory, then the hypervisor connects
    the program's socket itself; the sockaddr is put back."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    host = server.getsockname()[1]
    m, proc, below = Net(port_map=f"8000:{host}"), FakeProcess(), _Below()
    raw = sin("127.0.0.1", 8000)
    buf = proc.alloc(16, raw)
    s = program_socket()
    # a blocking socket: connecting, and the program's own connect waits for it
    assert _connect_with_below(m, proc, buf, below) in (None, 0)
    assert below.seen == [sin("127.0.0.1", host)]
    assert s.getpeername() == ("127.0.0.1", host)
    assert proc.read(buf, 16) == raw
    s = program_socket()
    s.setblocking(False)
    assert _connect_with_below(m, proc, buf, below) in (-errno.EINPROGRESS, 0)
    assert not s.getblocking()
    server.close()
    # refused at once, or in progress and refused when the program waits
    s = program_socket()
    s.setblocking(False)
    assert _connect_with_below(m, proc, buf, below) in (-errno.EINPROGRESS, -errno.ECONNREFUSED)
    assert s.getblocking() is False


class FakeProxy:
    """A listening socket on 127.0.0.1 whose first connection is handed to
    script(conn) in a thread."""

    def __init__(self, script):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(10)
        self.port = self.listener.getsockname()[1]
        self.seen = {}

        def run():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(10)
                try:
                    script(conn, self.seen)
                except OSError:
                    pass

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def close(self):
        self.thread.join(10)
        self.listener.close()


def socks5_ok(conn, seen):
    seen["greeting"] = conn.recv(3)
    conn.sendall(b"\x05\x00")
    seen["request"] = conn.recv(10)
    conn.sendall(b"\x05\x00\x00\x01" + bytes(6) + b"banner")   # the target speaks first
    conn.recv(1)   # until the client goes


def socks5_refuse(conn, seen):
    conn.recv(3)
    conn.sendall(b"\x05\x00")
    conn.recv(10)
    conn.sendall(b"\x05\x05\x00\x01" + bytes(6))


def hang_up(conn, seen):
    conn.recv(3)


def silent(conn, seen):
    while conn.recv(100):   # reads the greeting, never answers; ends when the client goes
        pass


def _proxied_connect(program_socket, script, quick=None, **opts):
    proxy = FakeProxy(script)
    s = program_socket()
    m = Net(socks5=f"127.0.0.1:{proxy.port}", no_proxy="", **opts)
    if quick is not None:
        m.quick = quick
    proc = FakeProcess()
    raw = sin("127.0.0.1", 8000)
    buf = proc.alloc(16, raw)
    try:
        result = proc.call(m.connect, "connect", 3, buf, 16)
        assert proc.read(buf, 16) == raw                # the program's sockaddr is as it was
        return result, s, m, proxy.seen
    finally:
        if result == 0:
            s.shutdown(socket.SHUT_RDWR)
        proxy.close()


def test_connect_through_socks5(program_socket):
    result, s, m, seen = _proxied_connect(program_socket, socks5_ok)
    assert result == 0
    assert seen == {"greeting": b"\x05\x01\x00", "request": b"\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x40"}
    assert os.get_blocking(s.fileno())                  # flags as the program left them
    s.settimeout(5)
    assert s.recv(100) == b"banner"                     # nothing of the stream was eaten
    assert m.proxied[os.fstat(s.fileno()).st_ino] == Addr(AF_INET, ip("127.0.0.1"), 8000)


@pytest.mark.parametrize("quick", [None, 0.0])
def test_blocking_connect_handshake_at_once_or_in_trio(program_socket, quick):
    """The handler starts the handshake on the tracer thread; when the proxy
    does not answer within the quick budget (0 here: never) the same
    handshake goes on in trio (call.later) and ends the same way."""
    result, s, m, seen = _proxied_connect(program_socket, socks5_ok, quick=quick)
    assert result == 0
    assert seen == {"greeting": b"\x05\x01\x00", "request": b"\x05\x01\x00\x01\x7f\x00\x00\x01\x1f\x40"}
    s.settimeout(5)
    assert s.recv(100) == b"banner"
    assert m.proxied[os.fstat(s.fileno()).st_ino] == Addr(AF_INET, ip("127.0.0.1"), 8000)


def test_plain_connect_says_later_when_it_must_wait(program_socket):
    # (whether a proxy answers within the quick budget depends on the
    # machine's load; with no budget the handler must always hand over)
    from umview_py import Later
    proxy = FakeProxy(socks5_ok)
    s = program_socket()
    m = Net(socks5=f"127.0.0.1:{proxy.port}", no_proxy="")
    m.quick = 0.0
    proc = FakeProcess()
    buf = proc.alloc(16, sin("127.0.0.1", 8000))
    try:
        answer = m.connect(proc.make_call("connect", 3, buf, 16))
        assert isinstance(answer, Later), answer
        assert settle_now(answer) == 0
    finally:
        s.close()
        proxy.close()


def _so_error(proc, m):
    """The program's getsockopt(fd 3, SOL_SOCKET, SO_ERROR) through the
    handler: (result, the int written)."""
    optval, optlen = proc.alloc(4, b"\xee" * 4), proc.alloc(4, struct.pack("<i", 4))

    async def go():
        return await m.getsockopt(proc.make_call("getsockopt", 3, socket.SOL_SOCKET, socket.SO_ERROR,
                                                 optval, optlen))
    return go, lambda: struct.unpack("<i", proc.read(optval, 4))[0]


def test_connect_nonblocking_through_socks5(program_socket):
    """A non-blocking socket: EINPROGRESS at once; while the handshake goes
    on getpeername says ENOTCONN; SO_ERROR waits for the handshake and says
    0; then getpeername shows the target and the stream is untouched."""
    release = threading.Event()

    def slow_ok(conn, seen):
        conn.recv(3)
        conn.sendall(b"\x05\x00")
        seen["request"] = conn.recv(10)
        release.wait(10)
        conn.sendall(b"\x05\x00\x00\x01" + bytes(6) + b"banner")
        conn.recv(1)

    proxy = FakeProxy(slow_ok)
    s = program_socket()
    s.setblocking(False)
    m, proc = Net(socks5=f"127.0.0.1:{proxy.port}", no_proxy=""), FakeProcess()
    buf = proc.alloc(16, sin("127.0.0.1", 8000))
    so_error, written = _so_error(proc, m)
    out = {}

    async def main():
        out["connect"] = await settle(m.connect(proc.make_call("connect", 3, buf, 16)))
        out["peer-early"] = _getsockname(m, proc, "getpeername")[0]
        release.set()
        out["so_error"] = await so_error()
        out["peer"] = _getsockname(m, proc, "getpeername")[:2]

    try:
        trio.run(main)
    finally:
        release.set()
    assert out["connect"] == -errno.EINPROGRESS
    assert out["peer-early"] == -errno.ENOTCONN
    assert out["so_error"] == 0 and written() == 0
    assert out["peer"] == (0, Addr(AF_INET, ip("127.0.0.1"), 8000))
    assert not os.get_blocking(s.fileno())
    s.setblocking(True)
    s.settimeout(5)
    assert s.recv(100) == b"banner"
    assert not m.pending
    s.shutdown(socket.SHUT_RDWR)
    proxy.close()


@pytest.mark.parametrize("script,err", [(socks5_refuse, errno.ECONNREFUSED), (None, errno.ECONNREFUSED)])
def test_connect_nonblocking_proxy_fails(program_socket, script, err):
    """Refused by the proxy, or no proxy at all: EINPROGRESS, then SO_ERROR
    says why, once; a second connect reports it instead if it comes first."""
    if script is None:
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))       # bound, not listening: nobody answers there
        port = holder.getsockname()[1]
    else:
        proxy = FakeProxy(script)
        port = proxy.port
    s = program_socket()
    s.setblocking(False)
    m, proc = Net(socks5=f"127.0.0.1:{port}", no_proxy=""), FakeProcess()
    buf = proc.alloc(16, sin("127.0.0.1", 8000))
    so_error, written = _so_error(proc, m)
    out = []

    async def main():
        r = await settle(m.connect(proc.make_call("connect", 3, buf, 16)))
        out.append(r)
        if r == -errno.EINPROGRESS:
            out.append(await so_error())
            out.append(written())
            out.append(await so_error())     # asked again: the kernel's own (0)

    trio.run(main)
    if script is None:
        holder.close()
    else:
        proxy.close()
    assert out in ([-errno.EINPROGRESS, 0, err, None], [-err])
    with pytest.raises(OSError):        # not connected: the program may connect again
        s.getpeername()


def test_connect_nonblocking_second_connect_waits(program_socket):
    proxy = FakeProxy(socks5_ok)
    s = program_socket()
    s.setblocking(False)
    m, proc = Net(socks5=f"127.0.0.1:{proxy.port}", no_proxy=""), FakeProcess()
    buf = proc.alloc(16, sin("127.0.0.1", 8000))
    out = []

    async def main():
        out.append(await settle(m.connect(proc.make_call("connect", 3, buf, 16))))
        out.append(await settle(m.connect(proc.make_call("connect", 3, buf, 16))))

    trio.run(main)
    assert out == [-errno.EINPROGRESS, 0]
    s.shutdown(socket.SHUT_RDWR)
    proxy.close()


@pytest.mark.parametrize("script,expect", [(socks5_refuse, -errno.ECONNREFUSED),
                                           (hang_up, -errno.ECONNREFUSED)])
def test_connect_through_proxy_failures(program_socket, script, expect):
    result, s, _, _ = _proxied_connect(program_socket, script)
    assert result == expect
    with pytest.raises(OSError):        # disconnected: the program may connect again
        s.getpeername()


def test_connect_proxy_timeout(program_socket):
    result, _, _, _ = _proxied_connect(program_socket, silent, proxy_timeout="0.3")
    assert result == -errno.ETIMEDOUT


def test_connect_proxy_down(program_socket):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))     # bound, not listening: nobody answers there
    port = holder.getsockname()[1]
    s = program_socket()
    m, proc = Net(http_proxy=f"127.0.0.1:{port}", no_proxy=""), FakeProcess()
    buf = proc.alloc(16, sin("127.0.0.1", 8000))
    assert proc.call(m.connect, "connect", 3, buf, 16) == -errno.ECONNREFUSED
    holder.close()


# ----------------------------------------------------------------------
# the handshakes themselves

def _take(sock):
    try:
        return sock.recv(4096, socket.MSG_DONTWAIT)
    except BlockingIOError:
        return b""


async def _pair_run(handshake, server_bytes, *args):
    a, b = socket.socketpair()
    b.sendall(server_bytes)
    try:
        await handshake(SocketIO(a), *args)
        return _take(b), _take(a)
    finally:
        a.close()
        b.close()


async def test_http_connect_keeps_what_follows_the_head():
    target = Addr(AF_INET6, ip("2001:db8::1"), 443)
    sent, left = await _pair_run(net.http_connect_handshake,
                                 b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\nSSH-2.0-banner", target)
    assert sent == b"CONNECT [2001:db8::1]:443 HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n"
    assert left == b"SSH-2.0-banner"


@pytest.mark.parametrize("answer,err", [
    (b"HTTP/1.1 502 Bad Gateway\r\n\r\n", errno.ECONNREFUSED),
    (b"HTTP/1.1 504 Gateway Timeout\r\n\r\n", errno.ETIMEDOUT),
    (b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", errno.ECONNREFUSED),
    (b"garbage\r\n\r\n", errno.ECONNREFUSED),
])
async def test_http_connect_errors(answer, err):
    with pytest.raises(ProxyFailure) as exc:
        await _pair_run(net.http_connect_handshake, answer, Addr(AF_INET, ip("10.0.0.1"), 80))
    assert exc.value.errno == err


async def test_http_connect_head_split_across_reads():
    a, b = socket.socketpair()
    io = SocketIO(a)
    got = []

    async def reader():
        got.append(await io.recv_head())

    async with trio.open_nursery() as n:
        n.start_soon(reader)
        for piece in (b"HTTP/1.1 200 OK\r", b"\n", b"\r", b"\nrest"):
            await trio.sleep(0.01)
            b.sendall(piece)
    assert got == [b"HTTP/1.1 200 OK\r\n\r\n"] and a.recv(10) == b"rest"
    a.close()
    b.close()


async def test_socks5_requests_and_errors():
    sent, _ = await _pair_run(net.socks5_handshake, b"\x05\x00\x05\x00\x00\x04" + bytes(18),
                              Addr(AF_INET6, ip("2001:db8::1"), 80))
    assert sent == b"\x05\x01\x00" + b"\x05\x01\x00\x04" + ip("2001:db8::1").packed + b"\x00\x50"
    sent, _ = await _pair_run(net.socks5_handshake, b"\x05\x02\x01\x00\x05\x00\x00\x03\x03abc\x00\x00",
                              Addr(AF_INET6, ip("::ffff:10.0.0.1"), 80), "u", "p")
    assert sent == (b"\x05\x02\x00\x02" + b"\x01\x01u\x01p"
                    + b"\x05\x01\x00\x01\x0a\x00\x00\x01\x00\x50")   # v4-mapped goes as IPv4
    for reply, err in ((b"\x05\x00\x05\x03\x00\x01" + bytes(6), errno.ENETUNREACH),
                       (b"\x05\x00\x05\x04\x00\x01" + bytes(6), errno.EHOSTUNREACH),
                       (b"\x05\x00\x05\x06\x00\x01" + bytes(6), errno.ETIMEDOUT),
                       (b"\x05\xff", errno.ECONNREFUSED),
                       (b"\x04\x00", errno.ECONNREFUSED)):
        with pytest.raises(ProxyFailure) as exc:
            await _pair_run(net.socks5_handshake, reply, Addr(AF_INET, ip("10.0.0.1"), 80))
        assert exc.value.errno == err


# ----------------------------------------------------------------------
# proxy_dns: the DNS answers, the placeholders, the requests by name

def _query(name, qtype=1, qid=0x4242, flags=0x0100, raw_name=None):
    qname = raw_name if raw_name is not None else b"".join(
        bytes([len(lb)]) + lb for lb in name.encode().split(b".")) + b"\0"
    return struct.pack("!6H", qid, flags, 1, 0, 0, 0) + qname + struct.pack("!HH", qtype, 1)


def _parse(answer):
    qid, flags, qd, an, ns, ar = struct.unpack_from("!6H", answer)
    return qid, flags & 0xF, an, answer


def test_dns_answers():
    table = net.DnsTable(net.parse_subnet("240.0.0.0/4"))
    a = net.dns_answer(_query("www.Example.ORG"), table)
    qid, rcode, an, raw = _parse(a)
    assert (qid, rcode, an) == (0x4242, 0, 1)
    assert raw[2] & 0x80 and raw[2] & 0x01 and raw[3] & 0x80       # QR, RD echoed, RA
    assert b"\x03www\x07Example\x03ORG\x00" in raw                  # the question as asked (0x20 case)
    assert raw.endswith(b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, net.DNS_TTL, 4) + bytes([240, 0, 0, 1]))
    # the same name (any case, trailing dot) keeps its address; another gets the next one
    assert net.dns_answer(_query("WWW.example.org."[:-1]), table)[-4:] == bytes([240, 0, 0, 1])
    assert net.dns_answer(_query("other.example.org"), table)[-4:] == bytes([240, 0, 0, 2])
    assert table.name_of(Addr(AF_INET6, ip("::ffff:240.0.0.2"), 80)) == "other.example.org"
    assert table.name_of(Addr(AF_INET, ip("240.0.0.9"), 80)) is None
    # AAAA and the rest: no records, so programs use the IPv4 placeholder
    for qtype in (28, 15, 16, 33):
        assert _parse(net.dns_answer(_query("www.example.org", qtype), table))[1:3] == (0, 0)
    # PTR of a placeholder gives its name back; of anything else, no such name
    ptr = net.dns_answer(_query("1.0.0.240.in-addr.arpa", 12), table)
    assert _parse(ptr)[1:3] == (0, 1) and ptr.endswith(b"\x03www\x07example\x03org\x00")
    assert _parse(net.dns_answer(_query("1.0.0.127.in-addr.arpa", 12), table))[1:3] == (3, 0)
    # what deserves no answer or an error
    assert net.dns_answer(b"\x00" * 5, table) is None                     # a runt
    assert net.dns_answer(_query("x.org", flags=0x8000), table) is None     # a response
    assert _parse(net.dns_answer(_query("x.org", flags=0x2800), table))[1] == 4     # opcode UPDATE: NOTIMP
    assert _parse(net.dns_answer(_query("x", raw_name=b"\x05ab"), table))[1] == 1  # truncated: FORMERR
    assert _parse(net.dns_answer(_query("x", raw_name=b"\xc0\x0c"), table))[1] == 1
    assert _parse(net.dns_answer(_query("bad name"), table))[1] == 3


def test_dns_table_runs_out():
    table = net.DnsTable(net.parse_subnet("10.9.8.0/24"))
    got = [table.addr_for(f"h{i}.test") for i in range(254)]
    assert got[0] == ip("10.9.8.1") and got[-1] == ip("10.9.8.254")
    assert table.addr_for("one.more") is None and table.addr_for("h7.test") == ip("10.9.8.8")
    assert _parse(net.dns_answer(_query("one.more"), table))[1] == 2        # SERVFAIL
    for bad in ("10.0.0.0/25", "::/64", "x"):
        with pytest.raises(ValueError):
            net.parse_subnet(bad)


def test_requests_by_name():
    t = Addr(AF_INET, ip("240.0.0.1"), 443)
    assert net.socks5_request(t, "www.example.org") == b"\x05\x01\x00\x03\x0fwww.example.org\x01\xbb"
    assert net.http_connect_request(t, host="www.example.org").startswith(
        b"CONNECT www.example.org:443 HTTP/1.1\r\nHost: www.example.org:443\r\n")


def test_proxy_dns_options():
    with pytest.raises(ModuleError, match="needs a proxy"):
        Net(proxy_dns="yes")
    m = Net(socks5="127.0.0.1:1080", proxy_dns="yes", dns_subnet="100.64.0.0/10")
    assert m.dns.subnet == ipaddress.ip_network("100.64.0.0/10")
    assert "proxy_dns=True dns_subnet=100.64.0.0/10" in m.describe()


def test_list_option_on_the_command_line():
    from umview_py import cli
    ns = cli.parse(["--port-map", "8000:18000", "--port-map", "9000:19000;9001:19001", "--no-proxy", "",
                    "--socks5", "127.0.0.1:1080", "--proxy-dns", "yes", "--", "true"])
    (name, opts), = ns.modules
    assert name == "net" and opts["port_map"] == "8000:18000,9000:19000;9001:19001"
    m = Net(**opts)
    assert m.port_map == {8000: 18000, 9000: 19000, 9001: 19001} and m.no_proxy == () and m.proxy_dns
    assert Net.options["port_map"].repeat and not getattr(Net.options["mode"], "repeat", False)
    assert cli.parse(["--net", "lo", "--", "true"]).modules == [("net", {"mode": "lo"})]


# ----------------------------------------------------------------------
# datagrams: destinations rewritten into the scratch area, sources shown back

def _call(proc, handler, name, *args):
    """Run a handler with a stack (for call.scratch); returns (result, call)."""
    stack = proc.alloc(8192)
    c = proc.make_call(name, *args)
    c.sp = stack + 8192
    try:
        if inspect.iscoroutinefunction(handler):
            return trio.run(handler, c), c
        return handler(c), c
    except net.SyscallError as exc:
        return -exc.errno, c


def test_sendto_port_map_rewritten_in_scratch():
    m, proc = Net(port_map="8000:18000", mode="loopback"), FakeProcess()
    data = proc.alloc(4, b"data")
    dest = proc.alloc(16, sin("127.0.0.1", 8000))
    r, c = _call(proc, m.sendto, "sendto", 3, data, 4, 0, dest, 16)
    assert r is None and c.rewritten and c.args[4] != dest and c.args[5] == 16
    assert proc.read(c.args[4], 16) == sin("127.0.0.1", 18000)
    assert proc.read(dest, 16) == sin("127.0.0.1", 8000)          # the program's own is untouched
    other = proc.alloc(16, sin("127.0.0.1", 8001))
    r, c = _call(proc, m.sendto, "sendto", 3, data, 4, 0, other, 16)
    assert r is None and not c.rewritten
    far = proc.alloc(16, sin("192.0.2.1", 8000))
    assert _call(proc, m.sendto, "sendto", 3, data, 4, 0, far, 16)[0] == -errno.ENETUNREACH
    # sendmsg: a copy of the msghdr points at the rewritten name
    hdr = proc.alloc(56, struct.pack("<QI4xQQQQi4x", dest, 16, 0x1234, 1, 0, 0, 0))
    r, c = _call(proc, m.sendmsg, "sendmsg", 3, hdr, 0)
    assert r is None and c.rewritten
    name, namelen, iov = struct.unpack_from("<QI4xQ", proc.read(c.args[1], 56))
    assert proc.read(name, namelen) == sin("127.0.0.1", 18000) and iov == 0x1234


def test_sendmmsg_rewritten_fills_msg_len(program_socket):
    """sendmmsg with a rewritten destination is done by the hypervisor on
    the program's socket; the program's msg_len fields are written."""
    s = program_socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(5)
    host = rx.getsockname()[1]
    m, proc = Net(port_map=f"8000:{host}"), FakeProcess()
    name = proc.alloc(16, sin("127.0.0.1", 8000))
    d1, d2 = proc.alloc(5, b"hello"), proc.alloc(3, b"two")
    iov1, iov2 = proc.alloc(16, struct.pack("<QQ", d1, 5)), proc.alloc(16, struct.pack("<QQ", d2, 3))
    table = proc.alloc(128, struct.pack("<QI4xQQQQi4xI4x", name, 16, iov1, 1, 0, 0, 0, 0)
                       + struct.pack("<QI4xQQQQi4xI4x", name, 16, iov2, 1, 0, 0, 0, 0))
    r, c = _call(proc, m.sendmsg, "sendmmsg", 3, table, 2, 0)
    assert r == 2 and not c.rewritten
    port = s.getsockname()[1]
    assert [rx.recvfrom(100) for _ in range(2)] == [(b"hello", ("127.0.0.1", port)), (b"two", ("127.0.0.1", port))]
    assert struct.unpack_from("<I", proc.read(table + 56, 4))[0] == 5
    assert struct.unpack_from("<I", proc.read(table + 64 + 56, 4))[0] == 3
    rx.close()


@pytest.mark.parametrize("handler,name,ptr_arg", [("recvfrom", "recvfrom", 4)])
def test_received_addresses_shown_as_guest_ports(handler, name, ptr_arg):
    m, proc = Net(port_map="8000:18000"), FakeProcess()
    for source, shown, have in ((sin("127.0.0.1", 18000), sin("127.0.0.1", 8000), 16),
                                (sin("127.0.0.1", 18001), sin("127.0.0.1", 18001), 16),
                                (sin("192.0.2.1", 18000), sin("192.0.2.1", 18000), 16),
                                (sin6("::ffff:127.0.0.1", 18000), sin6("::ffff:127.0.0.1", 8000), 28),
                                (sin("127.0.0.1", 18000), sin("127.0.0.1", 8000)[:6], 6)):
        addr, lenp = proc.alloc(len(source), source), proc.alloc(4, struct.pack("<i", have))
        # what the kernel wrote: the whole address if it fitted, else its start; its real length
        proc.write(addr, source[:have])
        proc.write(lenp, struct.pack("<i", len(source)))
        args = [3, 0, 0, 0, 0, 0]
        args[ptr_arg], args[ptr_arg + 1] = addr, lenp
        proc.kernel_results[name] = 4
        r, _ = _call(proc, getattr(m, handler), name, *args)
        assert r is None
        assert proc.read(addr, have) == shown[:have]


def test_proxy_dns_datagram_to_a_name_server(program_socket):
    """A query sent to port 53 goes to the view's DNS server (one port for
    each name server asked), which is shown as that name server on receipt;
    a placeholder cannot be reached by UDP."""
    program_socket(socket.AF_INET, socket.SOCK_DGRAM)
    m, proc = Net(socks5="127.0.0.1:1080", proxy_dns="yes", mode="deny"), FakeProcess()
    data = proc.alloc(4, b"data")
    ns = proc.alloc(16, sin("192.0.2.53", 53))
    r, c = _call(proc, m.sendto, "sendto", 3, data, 4, 0, ns, 16)
    assert r is None and c.rewritten                    # not refused by mode=deny: answered in the view
    front = parse_sockaddr(proc.read(c.args[4], 16))
    assert front.is_loopback and front.port != 53
    assert m.fronts[ip("192.0.2.53")].host == front
    ns2 = proc.alloc(16, sin("192.0.2.54", 53))
    r, c = _call(proc, m.sendto, "sendto", 3, data, 4, 0, ns2, 16)
    assert parse_sockaddr(proc.read(c.args[4], 16)).port != front.port
    # a placeholder: unreachable by datagram
    ph = m.dns.addr_for("www.example.org")
    dest = proc.alloc(16, sin(str(ph), 80))
    assert _call(proc, m.sendto, "sendto", 3, data, 4, 0, dest, 16)[0] == -errno.ENETUNREACH
    # the answer's source is shown as the name server
    src, lenp = proc.alloc(16, front.pack()), proc.alloc(4, struct.pack("<i", 16))
    proc.kernel_results["recvfrom"] = 30
    assert _call(proc, m.recvfrom, "recvfrom", 3, data, 4, 0, src, lenp)[0] is None
    assert proc.read(src, 16) == sin("192.0.2.53", 53)
    m.unloaded()


def test_proxy_dns_server_answers_udp_and_tcp():
    """The view's DNS server itself, under trio: UDP and TCP (length-prefixed)."""
    m = Net(socks5="127.0.0.1:1080", proxy_dns="yes")
    front = m._front_for(Addr(AF_INET, ip("192.0.2.53"), 53))
    got = {}

    async def main():
        async with trio.open_nursery() as nursery:
            nursery.start_soon(m._serve_front, front)
            u = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            await u.connect(("127.0.0.1", front.host.port))
            await u.send(_query("www.example.org"))
            got["udp"] = await u.recv(512)
            t = trio.socket.socket()
            await t.connect(("127.0.0.1", front.host.port))
            q = _query("www.example.org", qid=7)
            await t.send(len(q).to_bytes(2, "big") + q + len(q).to_bytes(2, "big"))   # one and a half
            await t.send(q)
            data = b""
            while len(data) < 2 * (2 + 49):
                data += await t.recv(512)
            got["tcp"] = data
            u.close()
            t.close()
            nursery.cancel_scope.cancel()

    trio.run(main)
    assert _parse(got["udp"])[:3] == (0x4242, 0, 1) and got["udp"][-4:] == bytes([240, 0, 0, 1])
    n = int.from_bytes(got["tcp"][:2], "big")
    assert _parse(got["tcp"][2:2 + n])[:3] == (7, 0, 1) and got["tcp"][2 + n - 4:2 + n] == bytes([240, 0, 0, 1])
    assert len(got["tcp"]) == 2 * (2 + n)
    assert front.udp.fileno() == -1 and front.tcp.fileno() == -1     # closed when it stops


@pytest.mark.parametrize("dest,mapped", [
    (("127.0.0.1", 8000), 18000), (("127.9.8.7", 8000), 18000), (("0.0.0.0", 8000), 18000),
    (("127.0.0.1", 8001), None), (("10.0.0.1", 8000), None), (("8.8.8.8", 53), None)])
def test_port_map_fast_path_agrees_with_the_general_one(dest, mapped):
    """The byte-level road of a port map (an AF_INET loopback sockaddr) and
    the general one (parse, Addr, pack) rewrite the same calls the same way."""
    answers = []
    for fast in (True, False):
        m = Net(port_map="8000:18000")
        assert m._v4_map is not None
        if not fast:
            m._v4_map = None
        proc = FakeProcess()
        raw = sin(*dest)
        buf = proc.alloc(16, raw)
        stack = proc.alloc(4096)
        c = proc.make_call("connect", 3, buf, 16)
        c.sp = stack + 4096
        assert m.connect(c) is None
        new = proc.read(c.args[1], c.args[2]) if c.rewritten else None
        answers.append((c.rewritten, new))
        assert proc.read(buf, 16) == raw                       # the program's own sockaddr untouched
    assert answers[0] == answers[1]
    assert answers[0] == ((True, sin(dest[0], mapped)) if mapped else (False, None))


def test_port_map_fast_path_only_without_policy_or_netcoop():
    assert Net(port_map="1:2")._v4_map == {b"\x00\x01": b"\x00\x02"}
    for opts in ({"mode": "loopback"}, {"netcoop": "yes"}, {"socks5": "127.0.0.1:1"}):
        assert Net(port_map="1:2", **opts)._v4_map is None, opts
