"""net: what the network looks like from inside a view.

Options (see docs/net.md for the whole story):

  mode=all|loopback|deny   (--net)   all: no restriction; loopback: only
                           loopback addresses can be reached or bound;
                           deny: no IPv4/IPv6 destination at all
  port_map=G:H[;G:H...]    (--port-map)  a bind to port G really binds H,
                           connects to G on a loopback address reach H,
                           getsockname/getpeername show G
  netcoop=yes              (--netcoop) binds to fixed ports get free host
                           ports; connects in the view follow them
  socks5=HOST:PORT         (--socks5)     TCP connects go through a SOCKS5 proxy
  http_proxy=HOST:PORT     (--http-proxy) ... or an HTTP CONNECT proxy
  no_proxy=CIDR[;CIDR...]  (--no-proxy)   direct destinations (default:
                           loopback; an empty value proxies everything)
  proxy_dns=yes            (--proxy-dns)  names resolved by the proxy: DNS
                           queries (port 53) are answered in the view with
                           placeholder addresses (dns_subnet, default
                           240.0.0.0/4); a connect to one goes through the
                           proxy by name
  proxy_timeout=SECONDS    the proxy handshake's time limit (default 30)
--port-map and --no-proxy may be repeated.

How the calls are served.  Checks that only read the program's arguments
(the policy of `mode`) are plain handlers.  Whatever must land elsewhere is
done by the hypervisor itself on a duplicate of the program's socket
(pidfd_getfd: the same socket, the same open file), without ever waiting:
a remapped bind; a proxied connect, whose handshake then runs in an async
handler with MSG_DONTWAIT and readiness waits (the file status flags,
shared with the program, are left alone), behind the program's back for a
non-blocking socket (getsockopt(SO_ERROR) waits for it).  A remapped
connect or datagram destination runs rewritten in the kernel, from the
program's scratch area (call.rewrite); received addresses are fixed after
call.kernel().  Under a parent view, its handlers are asked first, with
the rewritten sockaddr written in place in the program's memory for that
moment (see docs/net.md).
"""
from __future__ import annotations

import ctypes
import dataclasses
import errno
import fcntl
import ipaddress
import logging
import os
import select
import socket
import stat
import struct

import trio

from umview_py import Claims, Later, Module, ModuleError, Option, SyscallError, boolean

log = logging.getLogger("umview.net")

AF_UNSPEC, AF_UNIX, AF_INET, AF_INET6 = 0, 1, 2, 10
AF_NETLINK, AF_PACKET, AF_ALG = 16, 17, 38
AF_MAX = 46
SOCK_STREAM, SOCK_DGRAM = 1, 2
SOCKADDR_MAX = 128           # sizeof(struct sockaddr_storage)
SIN_LEN, SIN6_LEN, SIN6_LEN_RFC2133 = 16, 28, 24
MSGHDR_LEN, MMSGHDR_LEN = 56, 64
UIO_MAXIOV = 1024
CAP_NET_BIND_SERVICE = 10
PIDFD_THREAD = os.O_EXCL
NR_PIDFD_GETFD = 438
MSG_DONTWAIT = int(socket.MSG_DONTWAIT)   # plain ints: `|` on socket.MsgFlag costs microseconds
MSG_NOSIGNAL = int(socket.MSG_NOSIGNAL)
MSG_PEEK = int(socket.MSG_PEEK)

# Families a restricted view may still open: local IPC, the IP families
# (whose destinations the handlers check) and the kernel crypto API.
# AF_NETLINK is checked by protocol; all other families (AF_PACKET, AF_VSOCK,
# AF_BLUETOOTH, AF_CAN, AF_XDP, AF_KEY...) reach hardware or host networking
# directly and get EAFNOSUPPORT, as from a kernel built without them.
OPEN_FAMILIES = frozenset({AF_UNIX, AF_INET, AF_INET6, AF_ALG})
TRAPPED_FAMILIES = frozenset(range(AF_MAX)) - OPEN_FAMILIES
# Netlink protocols that show or change host networking: ROUTE (interfaces,
# addresses, routes), SOCK_DIAG (ss), NFLOG, XFRM, NETFILTER, IP6_FW,
# GENERIC (nl80211, ethtool, devlink, wireguard...).  Others (uevents,
# audit, connector, crypto...) are left alone.
NETWORK_NETLINK = frozenset({0, 4, 5, 6, 12, 13, 16})

MODES = {"all": "all", "host": "all", "on": "all",
         "loopback": "loopback", "lo": "loopback",
         "deny": "deny", "none": "deny", "off": "deny"}

IP4_LOOP = ipaddress.ip_network("127.0.0.0/8")
DEFAULT_NO_PROXY = (IP4_LOOP, ipaddress.ip_network("::1/128"),
                    ipaddress.ip_network("0.0.0.0/32"), ipaddress.ip_network("::/128"))


# ----------------------------------------------------------------------
# addresses

@dataclasses.dataclass(frozen=True)
class Addr:
    """An IPv4 or IPv6 socket address as a program passes it (family is the
    sockaddr's family: a v4-mapped address in an AF_INET6 sockaddr stays
    AF_INET6)."""

    family: int
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    port: int
    flowinfo: int = 0
    scope_id: int = 0

    @property
    def v4(self):
        """The IPv4 address this means, if any (plain or v4-mapped)."""
        if self.ip.version == 4:
            return self.ip
        return self.ip.ipv4_mapped

    @property
    def is_loopback(self) -> bool:
        v4 = self.v4
        return v4.is_loopback if v4 is not None else self.ip == ipaddress.IPv6Address(1)

    @property
    def is_wildcard(self) -> bool:
        v4 = self.v4
        return (v4 if v4 is not None else self.ip) == type(v4 if v4 is not None else self.ip)(0)

    @property
    def is_local(self) -> bool:
        """Does a connect to this address reach the local host by loopback?
        (Linux takes the wildcard address as "this host".)"""
        return self.is_loopback or self.is_wildcard

    def replace(self, **kw) -> "Addr":
        return dataclasses.replace(self, **kw)

    def pack(self, size: int | None = None) -> bytes:
        """The sockaddr bytes (sockaddr_in: 16, sockaddr_in6: 28, or the
        first `size` of them)."""
        if self.family == AF_INET:
            raw = struct.pack("<H", AF_INET) + struct.pack("!H", self.port) + self.ip.packed + bytes(8)
        else:
            ip = self.ip
            if ip.version == 4:
                ip = ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + ip.packed)
            raw = (struct.pack("<H", AF_INET6) + struct.pack("!HI", self.port, self.flowinfo)
                   + ip.packed + struct.pack("<I", self.scope_id))
        return raw if size is None else raw[:size]

    def in_family(self, family: int) -> "Addr | None":
        """The same destination in a sockaddr of `family` (an IPv4 address
        becomes v4-mapped in AF_INET6), or None when it cannot be said."""
        if family == self.family:
            return self
        if family == AF_INET6:
            return Addr(AF_INET6, ipaddress.IPv6Address(b"\0" * 10 + b"\xff\xff" + self.ip.packed),
                        self.port)
        if family == AF_INET and self.v4 is not None:
            return Addr(AF_INET, self.v4, self.port)
        return None

    def __str__(self):
        return f"[{self.ip}]:{self.port}" if self.family == AF_INET6 else f"{self.ip}:{self.port}"


def parse_sockaddr(raw: bytes) -> Addr | None:
    """An Addr from sockaddr bytes, or None for other families and for
    lengths the kernel would refuse (it then answers the program itself)."""
    if len(raw) < 2:
        return None
    family = struct.unpack_from("<H", raw)[0]
    if family == AF_INET and len(raw) >= SIN_LEN:
        port = struct.unpack_from("!H", raw, 2)[0]
        return Addr(AF_INET, ipaddress.IPv4Address(raw[4:8]), port)
    if family == AF_INET6 and len(raw) >= SIN6_LEN_RFC2133:
        port, flowinfo = struct.unpack_from("!HI", raw, 2)
        scope = struct.unpack_from("<I", raw, 24)[0] if len(raw) >= SIN6_LEN else 0
        return Addr(AF_INET6, ipaddress.IPv6Address(raw[8:24]), port, flowinfo, scope)
    return None


def loopback_for(family: int, dual_stack: bool) -> ipaddress._BaseAddress:
    """The loopback address that replaces a wildcard bind."""
    if family == AF_INET:
        return ipaddress.IPv4Address("127.0.0.1")
    return ipaddress.IPv6Address("::ffff:127.0.0.1") if dual_stack else ipaddress.IPv6Address("::1")


# ----------------------------------------------------------------------
# option values (each raises ValueError with a message the user can act on)

def _split(text: str) -> list[str]:
    """A list in one option value: `;`, `+`, `,` or blanks separate items
    (`-p net,...` splits on commas itself, so there use `;` or `+`)."""
    for sep in ";+,":
        text = text.replace(sep, " ")
    return text.split()


def parse_mode(text: str) -> str:
    mode = MODES.get(text.strip().lower())
    if mode is None:
        raise ValueError(f"mode must be all, loopback or deny, not {text!r}")
    return mode


def parse_port(text: str, what: str = "port") -> int:
    text = text.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"bad {what} {text!r}: a number from 1 to 65535")
    return int(text)


class PortMap(dict):
    """guest port -> host port; str() gives the option's text back."""

    def __str__(self):
        return ";".join(f"{g}:{h}" for g, h in self.items())


def parse_port_map(text: str) -> PortMap:
    pm = PortMap()
    items = _split(text)
    if not items:
        raise ValueError("empty port map (expected GUEST:HOST[;GUEST:HOST...])")
    for item in items:
        guest, sep, host = item.partition(":")
        if not sep:
            raise ValueError(f"bad port map entry {item!r}: expected GUEST:HOST")
        g, h = parse_port(guest, "guest port"), parse_port(host, "host port")
        if g in pm:
            raise ValueError(f"guest port {g} is mapped twice")
        pm[g] = h
    hosts = list(pm.values())
    if len(set(hosts)) != len(hosts):
        raise ValueError("two guest ports are mapped to the same host port")
    return pm


@dataclasses.dataclass(frozen=True)
class Proxy:
    host: str          # as written (for messages)
    addr: Addr         # resolved
    user: str | None = None
    password: str | None = None

    def __str__(self):
        cred = f"{self.user}:***@" if self.user is not None else ""
        return f"{cred}{self.host}:{self.addr.port}"


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """'1.2.3.4:1080', '[::1]:1080', 'localhost:1080' -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"bad address {text!r}: missing ']'")
        if rest and not rest.startswith(":"):
            raise ValueError(f"bad address {text!r}")
        port = rest[1:]
    else:
        if text.count(":") > 1:
            raise ValueError(f"bad address {text!r}: write IPv6 addresses as [ADDR]:PORT")
        host, _, port = text.partition(":")
    if not host:
        raise ValueError(f"bad address {text!r}: no host")
    if not port:
        if default_port is None:
            raise ValueError(f"bad address {text!r}: expected HOST:PORT")
        return host, default_port
    return host, parse_port(port)


def _resolve(host: str, port: int) -> Addr:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not all(c.isalnum() or c in "-._" for c in host):
            raise ValueError(f"bad host name {host!r}") from None
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise ValueError(f"cannot resolve {host!r}: {exc.strerror}") from None
        infos.sort(key=lambda i: i[0] != socket.AF_INET)  # IPv4 first: any socket can reach it
        ip = ipaddress.ip_address(infos[0][4][0])
    return Addr(AF_INET if ip.version == 4 else AF_INET6, ip, port)


def _proxy_parser(schemes: tuple[str, ...], default_port: int):
    def parse(text: str) -> Proxy:
        text = text.strip()
        for scheme in schemes:
            if text.lower().startswith(scheme + "://"):
                text = text[len(scheme) + 3:]
                break
        text = text.rstrip("/")
        user = password = None
        if "@" in text:
            cred, _, text = text.rpartition("@")
            user, _, password = cred.partition(":")
        host, port = parse_hostport(text, default_port)
        return Proxy(host, _resolve(host, port), user, password)

    parse.__name__ = "proxy address"
    return parse


parse_socks5 = _proxy_parser(("socks5", "socks5h", "socks"), 1080)
parse_http_proxy = _proxy_parser(("http",), None)


class Networks(tuple):
    def __str__(self):
        return ";".join(str(n) for n in self) or '""'


def parse_cidrs(text: str) -> Networks:
    """'10.0.0.0/8;fd00::/8;192.168.1.7' -> networks; '' or 'none' -> ()."""
    items = _split(text)
    if items == ["none"]:
        return Networks()
    nets = []
    for item in items:
        try:
            nets.append(ipaddress.ip_network(item.replace("[", "").replace("]", ""), strict=False))
        except ValueError:
            raise ValueError(f"bad network {item!r}: expected ADDRESS[/PREFIX]") from None
    return Networks(nets)


def positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError("must be a positive number of seconds")
    return value


def in_networks(addr: Addr, nets) -> bool:
    ips = [addr.ip] + ([addr.v4] if addr.v4 is not None and addr.ip.version == 6 else [])
    return any(ip in net for net in nets for ip in ips if ip.version == net.version)


# ----------------------------------------------------------------------
# proxy handshakes: pure protocol code over two awaitables, so that the
# unit tests can drive them over a socketpair

class ProxyFailure(Exception):
    def __init__(self, err: int, why: str):
        super().__init__(why)
        self.errno = err


SOCKS5_ERRORS = {1: errno.ECONNREFUSED, 2: errno.ECONNREFUSED, 3: errno.ENETUNREACH,
                 4: errno.EHOSTUNREACH, 5: errno.ECONNREFUSED, 6: errno.ETIMEDOUT,
                 7: errno.ECONNREFUSED, 8: errno.ECONNREFUSED}


def socks5_request(target: Addr, host: str | None = None) -> bytes:
    """CONNECT to target, or to `host` (a name, ATYP 3: the proxy resolves
    it) on target's port."""
    if host is not None:
        name = host.encode("idna" if not host.isascii() else "ascii")[:255]
        return b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack("!H", target.port)
    v4 = target.v4
    if v4 is not None:
        return b"\x05\x01\x00\x01" + v4.packed + struct.pack("!H", target.port)
    return b"\x05\x01\x00\x04" + target.ip.packed + struct.pack("!H", target.port)


async def socks5_handshake(io, target: Addr, user: str | None = None, password: str | None = None,
                           host: str | None = None):
    methods = b"\x00\x02" if user is not None else b"\x00"
    await io.send(b"\x05" + bytes([len(methods)]) + methods)
    ver, method = await io.recv_exact(2)
    if ver != 5:
        raise ProxyFailure(errno.ECONNREFUSED, f"not a SOCKS5 server (version {ver})")
    if method == 2 and user is not None:
        u, p = user.encode()[:255], (password or "").encode()[:255]
        await io.send(b"\x01" + bytes([len(u)]) + u + bytes([len(p)]) + p)
        _, status = await io.recv_exact(2)
        if status != 0:
            raise ProxyFailure(errno.ECONNREFUSED, "SOCKS5 authentication failed")
    elif method != 0:
        raise ProxyFailure(errno.ECONNREFUSED, f"SOCKS5 server accepts none of our methods ({method:#x})")
    await io.send(socks5_request(target, host))
    ver, rep, _, atyp = await io.recv_exact(4)
    if ver != 5:
        raise ProxyFailure(errno.ECONNREFUSED, "bad SOCKS5 reply")
    if rep != 0:
        raise ProxyFailure(SOCKS5_ERRORS.get(rep, errno.ECONNREFUSED), f"SOCKS5 reply {rep}")
    # the bound address: read exactly its length, nothing of the stream after it
    if atyp == 1:
        await io.recv_exact(4 + 2)
    elif atyp == 4:
        await io.recv_exact(16 + 2)
    elif atyp == 3:
        (n,) = await io.recv_exact(1)
        await io.recv_exact(n + 2)
    else:
        raise ProxyFailure(errno.ECONNREFUSED, f"bad SOCKS5 address type {atyp}")


def http_connect_request(target: Addr, user=None, password=None, host: str | None = None) -> bytes:
    v4 = target.v4
    if host is not None:
        hostport = f"{host}:{target.port}"
    else:
        hostport = f"{v4}:{target.port}" if v4 is not None else f"[{target.ip}]:{target.port}"
    lines = [f"CONNECT {hostport} HTTP/1.1", f"Host: {hostport}"]
    if user is not None:
        import base64
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        lines.append(f"Proxy-Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def http_status_errno(head: bytes) -> int:
    """0 for a 2xx answer to CONNECT, else the errno the program gets."""
    first = head.split(b"\r\n", 1)[0].split()
    if len(first) < 2 or not first[0].startswith(b"HTTP/") or not first[1].isdigit():
        return errno.ECONNREFUSED
    code = int(first[1])
    if 200 <= code < 300:
        return 0
    if code in (504, 408):
        return errno.ETIMEDOUT
    return errno.ECONNREFUSED


async def http_connect_handshake(io, target: Addr, user=None, password=None, host: str | None = None):
    await io.send(http_connect_request(target, user, password, host))
    head = await io.recv_head()
    err = http_status_errno(head)
    if err:
        raise ProxyFailure(err, "proxy answered " + head.split(b"\r\n", 1)[0].decode("latin-1"))


def quick_wait(fd: int, writable: bool, budget: float) -> bool:
    """Wait at most `budget` seconds (a millisecond or less) for fd,
    blocking this thread with the GIL released: a local proxy answers in
    tens of microseconds, much less than a trip through trio's scheduler
    costs.  True when fd is ready."""
    if budget <= 0 or fd >= 1024:    # select: a timeout in microseconds (poll's is in milliseconds)
        return False
    try:
        r, w, _ = select.select([] if writable else [fd], [fd] if writable else [], [], budget)
    except (OSError, ValueError):
        return False
    return bool(r or w)


class FdWait:
    """Awaited by a coroutine that run_eager drives (no event loop) when it
    must wait for fd: the driver hands the coroutine, stopped there, to
    finish_in_trio."""
    __slots__ = ("fd", "writable")

    def __init__(self, fd: int, writable: bool):
        self.fd, self.writable = fd, writable

    def __await__(self):
        yield self


def run_eager(coro):
    """Run coro on this thread until it ends, (True, its value), or must
    wait for an fd, (False, the FdWait).  Its exceptions go through."""
    try:
        return False, coro.send(None)
    except StopIteration as stop:
        return True, stop.value


async def finish_in_trio(coro, waiting: FdWait):
    """Go on with a coroutine that run_eager left waiting, in trio."""
    while True:
        if not isinstance(waiting, FdWait):
            raise RuntimeError(f"an eager coroutine awaited {waiting!r}")
        if waiting.writable:
            await trio.lowlevel.wait_writable(waiting.fd)
        else:
            await trio.lowlevel.wait_readable(waiting.fd)
        try:
            waiting = coro.send(None)
        except StopIteration as stop:
            return stop.value


class SocketIO:
    """send/recv on a socket shared with the program (a socket object or a
    file descriptor), without ever blocking for long and without changing
    its flags; never reads past what is asked.  `quick`: seconds to wait in
    place (see quick_wait) before waiting through trio.  The calls go
    straight to libc: no socket object (and no dup) per handshake."""

    HEAD_MAX = 16384

    def __init__(self, sock, quick: float = 0.0, eager: bool = False):
        self.fd = sock if isinstance(sock, int) else sock.fileno()
        self.quick = quick
        self.eager = eager
        self._buf = ctypes.create_string_buffer(4096)

    async def _wait(self, writable: bool) -> None:
        if quick_wait(self.fd, writable, self.quick):
            return
        if self.eager:   # driven by run_eager: hand the wait to its driver
            await FdWait(self.fd, writable)
            return
        if writable:
            await trio.lowlevel.wait_writable(self.fd)
        else:
            await trio.lowlevel.wait_readable(self.fd)

    async def _again(self, writable: bool) -> None:
        """After a send or recv that failed: wait if it would block, go on
        after EINTR; any other error is the proxy's failure."""
        err = ctypes.get_errno()
        if err in (errno.EAGAIN, errno.EWOULDBLOCK):
            await self._wait(writable)
        elif err != errno.EINTR:
            raise ProxyFailure(errno.ECONNREFUSED, f"proxy: {os.strerror(err)}")

    async def send(self, data: bytes) -> None:
        while data:
            n = _libc.send(self.fd, data, len(data), MSG_DONTWAIT | MSG_NOSIGNAL)
            if n < 0:
                await self._again(True)
                continue
            data = data[n:]

    async def _recv(self, n: int, flags: int = 0) -> bytes:
        n = min(n, len(self._buf))
        while True:
            got = _libc.recv(self.fd, self._buf, n, MSG_DONTWAIT | flags)
            if got < 0:
                await self._again(False)
                continue
            if got == 0:
                raise ProxyFailure(errno.ECONNREFUSED, "the proxy closed the connection")
            return self._buf.raw[:got]

    async def recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            buf += await self._recv(n - len(buf))
        return buf

    async def recv_head(self) -> bytes:
        """An HTTP response head, up to and including the empty line: peek,
        then take exactly the bytes that belong to the head."""
        buf = b""
        while True:
            peek = await self._recv(4096, MSG_PEEK)
            end = (buf[-3:] + peek).find(b"\r\n\r\n")
            if end >= 0:
                take = end + 4 - len(buf[-3:])
                return buf + await self.recv_exact(take)
            buf += await self.recv_exact(len(peek))
            if len(buf) > self.HEAD_MAX:
                raise ProxyFailure(errno.ECONNREFUSED, "proxy answer too long")


# ----------------------------------------------------------------------
# proxy_dns: the view's own DNS server, answering names with placeholder
# addresses that a connect then sends through the proxy by name

DNS_PORT = 53
DNS_TTL = 60
QTYPE_A, QTYPE_PTR, QTYPE_AAAA, QTYPE_ANY = 1, 12, 28, 255
RCODE_FORMERR, RCODE_SERVFAIL, RCODE_NXDOMAIN, RCODE_NOTIMP = 1, 2, 3, 4


def parse_subnet(text: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"bad network {text!r}: expected ADDRESS/PREFIX") from None
    if net.version != 4 or net.num_addresses < 256:
        raise ValueError(f"{text!r}: an IPv4 network of at least 256 addresses (a /24 or wider)")
    return net


def _valid_name(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    return all(0 < len(label) <= 63 for label in name.split(".")) and \
        all(33 <= ord(c) < 127 for c in name)


class DnsTable:
    """name <-> placeholder address, allocated in order from the subnet
    (its first and last addresses are left out); never forgets while the
    module lives (a program may keep an address long after it asked)."""

    def __init__(self, subnet: ipaddress.IPv4Network):
        self.subnet = subnet
        self._next = int(subnet.network_address) + 1
        self._last = int(subnet.broadcast_address) - 1
        self.by_name: dict[str, ipaddress.IPv4Address] = {}
        self.by_addr: dict[ipaddress.IPv4Address, str] = {}

    def addr_for(self, name: str) -> ipaddress.IPv4Address | None:
        key = name.rstrip(".").lower()
        ip = self.by_name.get(key)
        if ip is None:
            if not _valid_name(key) or self._next > self._last:
                return None
            ip = ipaddress.IPv4Address(self._next)
            self._next += 1
            self.by_name[key] = ip
            self.by_addr[ip] = key
        return ip

    def name_of(self, addr: "Addr") -> str | None:
        """The name behind a placeholder address (plain or v4-mapped)."""
        v4 = addr.v4
        return self.by_addr.get(v4) if v4 is not None else None


def _dns_name(raw: bytes, pos: int) -> tuple[list[bytes], int] | None:
    """The labels of an uncompressed name at pos, and the position after it."""
    labels = []
    while pos < len(raw):
        n = raw[pos]
        if n == 0:
            return labels, pos + 1
        if n & 0xC0 or pos + 1 + n > len(raw):
            return None
        labels.append(raw[pos + 1:pos + 1 + n])
        pos += 1 + n
    return None


def _dns_encode(name: str) -> bytes:
    return b"".join(bytes([len(lb)]) + lb for lb in name.encode().split(b".") if lb) + b"\0"


def dns_answer(query: bytes, table: DnsTable) -> bytes | None:
    """The answer to one DNS query (RFC 1035 format, without the TCP length
    prefix), or None for what deserves no answer (a response, a runt).
    A/ANY: a placeholder address; PTR of a placeholder: its name; AAAA and
    other types: no records (so programs use the IPv4 placeholder)."""
    if len(query) < 12:
        return None
    qid, flags, qdcount = struct.unpack_from("!HHH", query)
    if flags & 0x8000:
        return None
    opcode = (flags >> 11) & 0xF

    def reply(rcode, question=b"", answers=()):
        head = struct.pack("!6H", qid, 0x8000 | (opcode << 11) | (flags & 0x0100) | 0x0080 | rcode,
                           1 if question else 0, len(answers), 0, 0)
        return head + question + b"".join(answers)

    if opcode != 0:
        return reply(RCODE_NOTIMP)
    if qdcount != 1:
        return reply(RCODE_FORMERR)
    got = _dns_name(query, 12)
    if got is None or got[1] + 4 > len(query):
        return reply(RCODE_FORMERR)
    labels, end = got
    qtype, qclass = struct.unpack_from("!HH", query, end)
    question = query[12:end + 4]            # echoed as sent (0x20 case mixing survives)
    try:
        name = b".".join(labels).decode("ascii")
    except UnicodeDecodeError:
        return reply(RCODE_NXDOMAIN, question)
    if qclass not in (1, 255):
        return reply(0, question)
    if qtype in (QTYPE_A, QTYPE_ANY):
        ip = table.addr_for(name)
        if ip is None:
            return reply(RCODE_NXDOMAIN if not _valid_name(name.rstrip(".").lower()) else RCODE_SERVFAIL,
                         question)
        return reply(0, question, [b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_A, 1, DNS_TTL, 4) + ip.packed])
    if qtype == QTYPE_PTR:
        low = [lb.decode("ascii").lower() for lb in labels]
        if len(low) == 6 and low[4:] == ["in-addr", "arpa"] and all(x.isdigit() for x in low[:4]):
            try:
                ip = ipaddress.IPv4Address(".".join(reversed(low[:4])))
            except ValueError:
                ip = None
            host = table.by_addr.get(ip) if ip is not None else None
            if host is not None:
                data = _dns_encode(host)
                return reply(0, question, [b"\xc0\x0c" + struct.pack("!HHIH", QTYPE_PTR, 1, DNS_TTL,
                                                                       len(data)) + data])
        return reply(RCODE_NXDOMAIN, question)
    return reply(0, question)   # no records of that type (AAAA, MX, TXT...)


@dataclasses.dataclass
class DnsFront:
    """One address of the view's DNS server: stands for one name server
    the programs asked (orig, port 53) on a loopback port of ours (host),
    the same port for UDP and TCP, so that answers can be shown as coming
    from orig."""

    orig: Addr
    host: Addr
    udp: socket.socket
    tcp: socket.socket
    scope: "trio.CancelScope | None" = None


# ----------------------------------------------------------------------
# the program's sockets, from the hypervisor's side

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.send.restype = _libc.recv.restype = ctypes.c_ssize_t
_libc.send.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int]
_libc.recv.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def tracee_fd(pid: int, tid: int, fd: int) -> int:
    """A duplicate of the program's fd (pidfd_getfd).  Same open file, same
    socket: what we do on it, the program's socket does.  Raises OSError."""
    try:
        pidfd = os.pidfd_open(tid, PIDFD_THREAD)  # the thread's own fd table (Linux >= 6.9)
    except OSError:
        pidfd = os.pidfd_open(pid)
    try:
        got = _libc.syscall(NR_PIDFD_GETFD, pidfd, fd, 0)
        if got < 0:
            e = ctypes.get_errno()
            raise OSError(e, os.strerror(e))
        return got
    finally:
        os.close(pidfd)


def _sockname(fd: int, peer: bool = False) -> bytes:
    buf = ctypes.create_string_buffer(SOCKADDR_MAX)
    n = ctypes.c_uint32(SOCKADDR_MAX)
    rc = (_libc.getpeername if peer else _libc.getsockname)(fd, buf, ctypes.byref(n))
    if rc < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return buf.raw[:min(n.value, SOCKADDR_MAX)]


def _bind(fd: int, raw: bytes) -> int:
    rc = _libc.bind(fd, raw, len(raw))
    return -ctypes.get_errno() if rc < 0 else 0


def _disconnect(fd: int) -> None:
    """connect(AF_UNSPEC): the socket may be connected again, as after a
    failed connect."""
    _libc.connect(fd, struct.pack("<H", AF_UNSPEC) + bytes(14), 16)


def _connect_nonblocking(fd: int, raw: bytes) -> int:
    """connect() that never waits: 0, -EINPROGRESS or -errno.  The file's
    O_NONBLOCK is set for that one call if need be, then put back (the
    file is shared with the program, whose thread is stopped meanwhile)."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if not flags & os.O_NONBLOCK:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    try:
        rc = _libc.connect(fd, raw, len(raw))
        return -ctypes.get_errno() if rc < 0 else 0
    finally:
        if not flags & os.O_NONBLOCK:
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)


def _getsockopt_int(fd: int, level: int, opt: int) -> int:
    v = ctypes.c_int(0)
    n = ctypes.c_uint32(4)
    if _libc.getsockopt(fd, level, opt, ctypes.byref(v), ctypes.byref(n)) < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return v.value


def _may_bind_privileged(pid: int) -> bool:
    """Could the program bind a port below ip_unprivileged_port_start itself?"""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return bool(int(line.split()[1], 16) >> CAP_NET_BIND_SERVICE & 1)
    except OSError:
        pass
    return False


def _unprivileged_port_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1024


class _Bounded(dict):
    """A dict that forgets its oldest entries (keys are socket inodes; the
    sockets of a long session come and go)."""

    LIMIT = 1 << 16

    def __setitem__(self, key, value):
        self.pop(key, None)
        super().__setitem__(key, value)
        if len(self) > self.LIMIT:
            del self[next(iter(self))]


# ----------------------------------------------------------------------
# the module

class _Pending:
    """A proxied connect of a non-blocking socket whose handshake goes on
    after the program got EINPROGRESS.  result: 0 or -errno, once done."""

    __slots__ = ("event", "result")

    def __init__(self):
        self.event = trio.Event()
        self.result = -errno.ECONNREFUSED

    @property
    def done(self) -> bool:
        return self.event.is_set()


QUICK_WAIT = 0.001     # seconds waited in place per step of a local proxy's handshake
MAX_FRONTS = 64        # name servers the view's DNS server stands for


class Net(Module):
    name = "net"
    description = "network policy (deny, loopback), port maps, netcoop, SOCKS5/HTTP proxies, proxy DNS"
    needs_loop = True   # the proxy-DNS server and proxy tunnels are trio tasks
    options = {
        "mode": Option(parse_mode, "all", "all, loopback (only loopback addresses) or deny (no network)",
                       cli="--net"),
        "port_map": Option(parse_port_map, None, "GUEST:HOST[;GUEST:HOST...]: binds to GUEST listen "
                               "on HOST; connects and datagrams to GUEST on loopback reach HOST",
                               cli="--port-map", repeat=True),
        "netcoop": Option(boolean, False, "binds to fixed ports get free host ports; connects in the "
                          "view follow them", cli="--netcoop"),
        "socks5": Option(parse_socks5, None, "HOST:PORT of a SOCKS5 proxy for outgoing TCP connects",
                         cli="--socks5"),
        "http_proxy": Option(parse_http_proxy, None, "HOST:PORT of an HTTP CONNECT proxy for outgoing "
                             "TCP connects", cli="--http-proxy"),
        "no_proxy": Option(parse_cidrs, None, "CIDR[;CIDR...] reached directly, not through the "
                               "proxy (default: loopback; empty: none)", cli="--no-proxy", repeat=True),
        "proxy_dns": Option(boolean, False, "yes: names are resolved through the proxy (the view "
                            "answers DNS queries with placeholder addresses)", cli="--proxy-dns"),
        "dns_subnet": Option(parse_subnet, ipaddress.ip_network("240.0.0.0/4"),
                             "IPv4 network of proxy_dns's placeholder addresses"),
        "proxy_timeout": Option(positive, 30.0, "seconds allowed for the proxy's handshake"),
    }

    def __init__(self, **options):
        super().__init__(**options)
        cfg = self.config
        self.mode = cfg["mode"]
        self.port_map: dict[int, int] = dict(cfg["port_map"] or {})
        self.port_unmap = {h: g for g, h in self.port_map.items()}
        self.netcoop = bool(cfg["netcoop"])
        if cfg["socks5"] is not None and cfg["http_proxy"] is not None:
            raise ModuleError("module net: socks5 and http_proxy cannot be used together")
        self.proxy: Proxy | None = cfg["socks5"] or cfg["http_proxy"]
        self.proxy_kind = "socks5" if cfg["socks5"] is not None else "http"
        self.no_proxy = DEFAULT_NO_PROXY if cfg["no_proxy"] is None else tuple(cfg["no_proxy"])
        self.proxy_dns = bool(cfg["proxy_dns"])
        if self.proxy_dns and not self.proxy:
            raise ModuleError("module net: proxy_dns needs a proxy (socks5 or http_proxy)")
        self.restricted = self.mode != "all"
        self.remaps = bool(self.port_map) or self.netcoop
        # netcoop: (sock type, guest port) -> host port, and back
        self.coop: dict[tuple[int, int], int] = {}
        self.coop_rev: dict[tuple[int, int], int] = {}
        self.proxied = _Bounded()   # socket inode -> target Addr (getpeername)
        self.narrowed = _Bounded()  # socket inode -> the wildcard it asked for (getsockname)
        self.pending = _Bounded()   # socket inode -> _Pending (non-blocking proxied connects)
        self.unpriv_start = _unprivileged_port_start()
        # a handshake step with a proxy on this host is waited for in place
        self.quick = QUICK_WAIT if self.proxy and self.proxy.addr.is_loopback else 0.0
        # proxy_dns: placeholder names, and the view's DNS server
        self.dns = DnsTable(cfg["dns_subnet"]) if self.proxy_dns else None
        self.fronts: dict = {}      # name server ip -> DnsFront
        self.front_at: dict = {}    # (our ip, our port) -> DnsFront
        self._token = None
        # Without a proxy, connect takes the shorter road of _connect_plain;
        # with a port map alone (no policy, no netcoop), an IPv4 loopback
        # destination is looked up by its port's bytes (_connect_mapped_v4).
        if not self.proxy:
            self.connect = self._connect_plain
        self._v4_map = ({struct.pack("!H", g): struct.pack("!H", h) for g, h in self.port_map.items()}
                        if self.port_map and not self.proxy and not self.netcoop and not self.restricted
                        else None)

    def claims(self):
        c = Claims()
        sc = c.syscalls
        if self.restricted:
            sc |= {"socket", "bind", "listen", "connect", "sendto", "sendmsg", "sendmmsg", "getsockname"}
            c.arg_in["socket"] = (0, TRAPPED_FAMILIES)
        if self.remaps:
            sc |= {"bind", "connect", "getsockname", "getpeername", "sendto", "sendmsg", "sendmmsg",
                   "recvfrom", "recvmsg", "recvmmsg"}
        if self.proxy:
            sc |= {"connect", "getpeername", "getsockopt"}
            c.arg_in["getsockopt"] = (2, frozenset({socket.SO_ERROR}))   # SO_ERROR (at any level)
        if self.proxy_dns:
            sc |= {"sendto", "sendmsg", "sendmmsg", "recvfrom", "recvmsg", "recvmmsg"}
        if self._v4_map is not None:
            # the port map's common case (_connect_mapped_v4) needs nobody:
            # programs make it themselves (the shim)
            c.connect_map = dict(self.port_map)
        if (self.proxy and self.proxy_kind == "socks5" and self.proxy.user is None and not self.proxy_dns
                and not self.remaps and not self.restricted):
            # a blocking connect through the proxy is the handshake alone
            # (connect, _connect_via_proxy): the shim does it as proxychains
            c.socks5 = (str(self.proxy.addr.ip), self.proxy.addr.port, list(self.no_proxy),
                        self.config["proxy_timeout"])
        # only the calls that name an address stop: send() on a connected
        # socket and recv() run on.  accept is left alone (docs/net.md:
        # a peer on a mapped port is rare, an accept stop costs every server)
        for name, idx in (("sendto", 4), ("recvfrom", 4)):
            if name in sc:
                c.arg_nonzero[name] = idx
        return c

    def describe(self):
        parts = []
        for key in ("mode", "port_map", "netcoop", "socks5", "http_proxy", "no_proxy", "proxy_dns",
                    "dns_subnet", "proxy_timeout"):
            value = self.config[key]
            if value != self.options[key].default:
                parts.append(f"{key}={value}")
        return " ".join(parts)

    # -- life cycle ---------------------------------------------------
    def loaded(self, view):
        try:
            self._token = trio.lowlevel.current_trio_token()
        except RuntimeError:
            self._token = None   # not under trio (unit tests): the DNS server is not started

    def unloaded(self):
        for front in list(self.fronts.values()):
            if front.scope is not None and self._token is not None:
                try:
                    self._token.run_sync_soon(front.scope.cancel)
                except trio.RunFinishedError:
                    pass
            elif front.scope is None:
                front.udp.close()
                front.tcp.close()
        self.fronts.clear()
        self.front_at.clear()

    # -- helpers ------------------------------------------------------
    def _dup(self, call, fd: int) -> int | None:
        """Our duplicate of the program's fd, or None when it is not one
        (the kernel then gives the program EBADF/ENOTSOCK itself)."""
        try:
            return tracee_fd(call.pid, call.tid, fd)
        except OSError:
            return None

    def _inode(self, call, fd: int) -> int | None:
        try:
            st = os.stat(f"/proc/{call.tid}/fd/{fd}")
        except OSError:
            return None
        return st.st_ino if stat.S_ISSOCK(st.st_mode) else None

    def _sock_type(self, call, fd: int) -> int | None:
        dup = self._dup(call, fd)
        if dup is None:
            return None
        try:
            return _getsockopt_int(dup, socket.SOL_SOCKET, socket.SO_TYPE)
        except OSError:
            return None
        finally:
            os.close(dup)

    @staticmethod
    def _poke(call, addr: int, data: bytes) -> None:
        """Write the program's memory, even a read-only page (a const
        sockaddr): /proc/PID/mem writes like a debugger does."""
        try:
            call.write(addr, data)
        except SyscallError:
            try:
                fd = os.open(f"/proc/{call.tid}/mem", os.O_RDWR)
                try:
                    if os.pwrite(fd, data, addr) != len(data):
                        raise OSError(errno.EFAULT, "short write")
                finally:
                    os.close(fd)
            except OSError:
                raise SyscallError(errno.EFAULT) from None

    @staticmethod
    def _next(call):
        """What the layers below say about the call as it now stands (its
        sockaddr rewritten in place): None when none of them takes it.  An
        async handler below cannot be asked from here (call.next() serves
        plain ones); it is then skipped, see docs/net.md."""
        try:
            return call.next()
        except RuntimeError:
            log.debug("net: an async handler below was not asked about %s", call.name)
            return None

    @staticmethod
    def _alone(call) -> bool:
        """No handler below this one for this call (the usual case: no
        parent view with a module that wants it)."""
        return getattr(call, "_pos", 0) + 1 >= len(getattr(call, "_handlers", ()))

    def _ask_below(self, call, ptr: int, old: bytes, new: bytes):
        if self._alone(call):
            return None
        self._poke(call, ptr, new)
        try:
            return self._next(call)
        finally:
            self._poke(call, ptr, old[:len(new)])

    def _read_addr(self, call, ptr: int, length: int) -> Addr | None:
        if not ptr or length < 2 or length > SOCKADDR_MAX:
            return None
        return parse_sockaddr(call.read(ptr, length))

    def _deny_dest(self, addr: Addr | None) -> None:
        """The policy for a destination the program itself asked for."""
        if addr is None or not self.restricted:
            return
        if self.mode == "deny" or not addr.is_local:
            raise SyscallError(errno.ENETUNREACH)

    def _guest_port(self, stype: int, port: int) -> int:
        g = self.port_unmap.get(port)
        if g is None and self.netcoop:
            g = self.coop_rev.get((stype, port))
        return port if g is None else g

    def _host_port(self, stype: int | None, port: int) -> int | None:
        h = self.port_map.get(port)
        if h is None and self.netcoop and stype is not None:
            h = self.coop.get((stype, port))
        return h

    def _coop_has(self, port: int) -> bool:
        return self.netcoop and ((SOCK_STREAM, port) in self.coop or (SOCK_DGRAM, port) in self.coop)

    @staticmethod
    def _packed_as(dest: Addr, raw: bytes) -> bytes:
        """dest as a sockaddr of the family and length the program used."""
        family = struct.unpack_from("<H", raw)[0]
        d = dest.in_family(family)
        if d is None:
            raise SyscallError(errno.ENETUNREACH)
        return d.pack(min(len(raw), SIN6_LEN) if family == AF_INET6 else SIN_LEN)

    def _front_orig(self, addr: Addr) -> Addr | None:
        """The name server that one of the view's DNS server addresses
        stands for (in addr's family), or None."""
        if not self.front_at:
            return None
        front = self.front_at.get((addr.v4 if addr.v4 is not None else addr.ip, addr.port))
        return None if front is None else front.orig.in_family(addr.family)

    def _shown_peer(self, addr: Addr, stype: int) -> Addr:
        """The address a program is shown for a peer or a datagram's source:
        one of the view's DNS server addresses is the name server the
        program asked; a loopback host port of a port map (or netcoop) is
        the guest port."""
        shown = self._front_orig(addr)
        if shown is not None:
            return shown
        if self.remaps and addr.is_loopback:
            g = self._guest_port(stype, addr.port)
            if g != addr.port:
                return addr.replace(port=g)
        return addr

    # -- socket -------------------------------------------------------
    def socket(self, call):
        if not self.restricted:
            return None
        family = call.arg(0, bits=32)
        if family == AF_NETLINK:
            if call.arg(2, bits=32) in NETWORK_NETLINK:
                raise SyscallError(errno.EPROTONOSUPPORT)
            return None
        if family in TRAPPED_FAMILIES:
            raise SyscallError(errno.EAFNOSUPPORT)
        return None

    # -- bind / listen ------------------------------------------------
    def bind(self, call):
        fd = call.arg(0, bits=32)
        length = call.arg(2, signed=False, bits=32)
        if not call.args[1] or length < 2 or length > SOCKADDR_MAX:
            return None
        raw = call.read(call.args[1], length)
        addr = parse_sockaddr(raw)
        if addr is None:
            # AF_UNSPEC with INADDR_ANY is taken as AF_INET's wildcard by the kernel
            if (self.restricted and len(raw) >= SIN_LEN and struct.unpack_from("<H", raw)[0] == AF_UNSPEC
                    and raw[4:8] == bytes(4)):
                addr = Addr(AF_INET, ipaddress.IPv4Address(0), struct.unpack_from("!H", raw, 2)[0])
                raw = addr.pack()
            else:
                return None
        dup = self._dup(call, fd)
        if dup is None:
            return None
        try:
            try:
                domain = _getsockopt_int(dup, socket.SOL_SOCKET, socket.SO_DOMAIN)
                stype = _getsockopt_int(dup, socket.SOL_SOCKET, socket.SO_TYPE)
            except OSError:
                return None
            if domain not in (AF_INET, AF_INET6):
                return None
            new = addr
            wildcard = None
            if self.restricted and not addr.is_loopback:
                if not addr.is_wildcard:
                    raise SyscallError(errno.EADDRNOTAVAIL)
                dual = False
                if addr.family == AF_INET6 and addr.v4 is None:
                    try:
                        dual = not _getsockopt_int(dup, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                    except OSError:
                        pass
                wildcard = addr.ip
                new = new.replace(ip=loopback_for(addr.family, dual or addr.v4 is not None))
            coop = False
            if addr.port:
                host = self.port_map.get(addr.port)
                if host is not None:
                    new = new.replace(port=host)
                elif self.netcoop and stype in (SOCK_STREAM, SOCK_DGRAM):
                    new = new.replace(port=0)
                    coop = True
            if new == addr:
                return None
            if 0 < new.port < self.unpriv_start and not _may_bind_privileged(call.pid):
                raise SyscallError(errno.EACCES)
            packed = new.pack(min(len(raw), SIN6_LEN) if addr.family == AF_INET6 else SIN_LEN)
            # the layers below (a parent view's net) see the address we
            # chose; one of them may bind it itself (narrowed, remapped)
            rc = self._ask_below(call, call.args[1], raw, packed)
            if rc is None:
                rc = _bind(dup, packed)
            if rc < 0:
                return rc
            if coop:
                got = parse_sockaddr(_sockname(dup))
                if got is not None:
                    old = self.coop.get((stype, addr.port))
                    if old is not None:
                        self.coop_rev.pop((stype, old), None)
                    self.coop[(stype, addr.port)] = got.port
                    self.coop_rev[(stype, got.port)] = addr.port
                    log.info("netcoop: port %d/%s of the view is host port %d", addr.port,
                             "tcp" if stype == SOCK_STREAM else "udp", got.port)
            if wildcard is not None:
                self.narrowed[os.fstat(dup).st_ino] = wildcard
            return 0
        finally:
            os.close(dup)

    def listen(self, call):
        """An unbound socket that listens is bound by the kernel to the
        wildcard address: bind it to loopback first."""
        if not self.restricted:
            return None
        dup = self._dup(call, call.arg(0, bits=32))
        if dup is None:
            return None
        try:
            try:
                local = parse_sockaddr(_sockname(dup))
            except OSError:
                return None
            if local is None or local.port != 0 or not local.is_wildcard:
                return None
            dual = False
            if local.family == AF_INET6:
                try:
                    dual = not _getsockopt_int(dup, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)
                except OSError:
                    pass
            if _bind(dup, local.replace(ip=loopback_for(local.family, dual)).pack()) == 0:
                self.narrowed[os.fstat(dup).st_ino] = local.ip
            return None
        finally:
            os.close(dup)

    # -- connect ------------------------------------------------------
    # Without a proxy, connect is a plain handler: the policy reads the
    # sockaddr, and a remapped port is connected by the hypervisor itself on
    # its duplicate of the socket, made non-blocking for that one call so
    # that the tracer thread never waits (see _connect_remapped).  With a
    # proxy it is async: the handshake takes round trips.

    def _read_connect(self, call):
        """(sockaddr bytes, Addr) of a connect, or None when it is not an
        IPv4/IPv6 destination (or one the kernel refuses by itself)."""
        ptr = call.args[1]
        length = call.arg(2, signed=False, bits=32)
        if not ptr or length < 2 or length > SOCKADDR_MAX:
            return None
        raw = call.read(ptr, length)
        addr = parse_sockaddr(raw)
        return None if addr is None else (raw, addr)

    def _mapped(self, call, fd: int, addr: Addr, dup: int | None = None):
        """Where a connect to addr really goes (port map, netcoop), our
        duplicate of the socket if one was needed to decide (else the one
        given), and the socket's type if it was looked at."""
        if not (self.remaps and addr.is_local):
            return addr, dup, None
        host = self.port_map.get(addr.port)
        if host is not None:
            return addr.replace(port=host), dup, None
        if not self._coop_has(addr.port):
            return addr, dup, None
        if dup is None:
            dup = self._dup(call, fd)
            if dup is None:
                return addr, None, None
        stype = _getsockopt_int(dup, socket.SOL_SOCKET, socket.SO_TYPE)
        host = self._host_port(stype, addr.port)
        return (addr if host is None else addr.replace(port=host)), dup, stype

    def _connect_mapped_v4(self, call):
        """The port map's common case, on bytes: an AF_INET sockaddr to
        127.0.0.0/8 or 0.0.0.0 on a mapped port, nobody below to ask.  The
        sockaddr is rewritten with the host port; anything else (or None
        when this is not that case) goes the general way."""
        length = call.args[2] & 0xFFFFFFFF
        if not 16 <= length <= SOCKADDR_MAX or not call.args[1] or not self._alone(call):
            return None
        raw = call.read(call.args[1], length)
        if raw[:2] != b"\x02\x00" or not (raw[4] == 127 or raw[4:8] == b"\0\0\0\0"):
            return None
        host = self._v4_map.get(raw[2:4])
        if host is None:
            return None
        new = raw[:2] + host + raw[4:]
        call.rewrite(arg1=call.scratch(new), arg2=len(new))
        return True

    def _connect_plain(self, call):
        if self._v4_map is not None and self._connect_mapped_v4(call):
            return None
        got = self._read_connect(call)
        if got is None:
            return None
        raw, addr = got
        fd = call.arg(0, bits=32)
        dup = None
        try:
            dest, dup, _ = self._mapped(call, fd, addr)
            self._deny_dest(dest)
            if dest == addr:
                return None
            return self._connect_remapped(call, fd, dup, raw, dest)
        except OSError:
            return None
        finally:
            if dup is not None:
                os.close(dup)

    def _connect_remapped(self, call, fd: int, dup: int | None, raw: bytes, dest: Addr):
        """Connect the program's socket to dest (a remapped loopback port,
        or the view's DNS server).

        The layers below are asked first, with the rewritten sockaddr in
        the program's memory.  Then our duplicate of the socket is made
        non-blocking for the call (the program's thread is stopped; the flag
        is put back at once) and connected.  Done (0) or failed at once: that
        is the program's answer.  In progress: a non-blocking program gets
        EINPROGRESS as usual; a blocking one runs its own connect, which the
        kernel, seeing the socket already connecting, turns into a wait for
        the outcome (the address it passes is then not looked at)."""
        new = self._packed_as(dest, raw)
        if self._alone(call):
            # nobody below to ask: the kernel connects the program's socket
            # itself, to the address put in the scratch area (the program's
            # registers are put back after the call)
            call.rewrite(arg1=call.scratch(new), arg2=len(new))
            return None
        below = self._ask_below(call, call.args[1], raw, new)
        if below is not None:
            return below
        own = dup is None
        if own:
            dup = self._dup(call, fd)
            if dup is None:
                return None
        try:
            blocking = os.get_blocking(dup)
            rc = _connect_nonblocking(dup, new)
        finally:
            if own:
                os.close(dup)
        if rc == -errno.EINPROGRESS and blocking:
            return None
        return rc

    def connect(self, call):
        # Plain: the proxy handshake is tried at once on the tracer thread
        # (a local proxy answers in microseconds) and the call goes to trio
        # (call.later) only when it must wait (_connect_via_proxy).
        got = self._read_connect(call)
        if got is None:
            return None
        raw, addr = got
        fd = call.arg(0, bits=32)
        dup = None
        try:
            if self.proxy_dns and (addr.port == DNS_PORT or self.dns.name_of(addr) is not None):
                dup = self._dup(call, fd)
                if dup is None:
                    return None
                stype = _getsockopt_int(dup, socket.SOL_SOCKET, socket.SO_TYPE)
                name = self.dns.name_of(addr)
                if name is not None:       # a placeholder: through the proxy by name
                    if stype != SOCK_STREAM:
                        return -errno.ENETUNREACH   # no UDP through the proxy
                    answer = self._connect_via_proxy(call, dup, raw, addr, name)
                    if isinstance(answer, Later):
                        dup = None   # the continuation owns it now
                    return answer
                if stype in (SOCK_STREAM, SOCK_DGRAM):   # a DNS query: the view answers it
                    front = self._front_for(addr)
                    if front is None:
                        return -errno.ENETUNREACH
                    return self._connect_remapped(call, fd, dup, raw, front.host)
            dest, dup, stype = self._mapped(call, fd, addr, dup)
            if self.proxy and not in_networks(dest, self.no_proxy) and not self._is_proxy(dest):
                if stype is None:
                    if dup is None:
                        dup = self._dup(call, fd)
                        if dup is None:
                            return None
                    stype = _getsockopt_int(dup, socket.SOL_SOCKET, socket.SO_TYPE)
                if stype == SOCK_STREAM:
                    answer = self._connect_via_proxy(call, dup, raw, dest)
                    if isinstance(answer, Later):
                        dup = None   # the continuation owns it now
                    return answer
            self._deny_dest(dest)
            if dest == addr:
                return None
            return self._connect_remapped(call, fd, dup, raw, dest)
        except OSError:
            return None
        finally:
            if dup is not None:   # never waited on through trio: just closed
                os.close(dup)

    def _is_proxy(self, dest: Addr) -> bool:
        p = self.proxy.addr
        return dest.port == p.port and (dest.ip == p.ip or (dest.v4 is not None and dest.v4 == p.v4))

    def _connect_via_proxy(self, call, dup: int, raw: bytes, target: Addr, host: str | None = None):
        """Connect the program's socket to the proxy and through it to
        target (or to `host` by name, on target's port), from the hypervisor.

        A blocking socket: the program's thread waits at its connect until
        the tunnel is up (0) or failed (-errno); the handshake runs here
        while the proxy answers at once, and goes on in trio (call.later,
        which then owns dup) when it must wait.  A non-blocking one: the
        program gets EINPROGRESS at once and the handshake goes on behind
        it; getsockopt(SO_ERROR), a second connect and getpeername wait for
        it or say it is not over, as for a connect under way (docs/net.md)."""
        proxy = self.proxy.addr.in_family(target.family)
        if proxy is None:  # an IPv4 socket cannot reach an IPv6 proxy
            return -errno.ENETUNREACH
        size = min(len(raw), SIN6_LEN if target.family == AF_INET6 else SIN_LEN)
        packed = proxy.pack(size)
        below = self._ask_below(call, call.args[1], raw, packed)  # a parent view judges the proxy's address
        if below is not None:
            return below
        ino = os.fstat(dup).st_ino
        pend = self.pending.get(ino)
        if pend is not None:
            # connect again while (or after) the first one was under way: its
            # outcome, once (SO_ERROR would have said it otherwise)
            if not pend.done:
                return call.later(self._pending_outcome(dup, ino, pend))
            if self.pending.pop(ino, None) is pend:
                return pend.result
        rc = _connect_nonblocking(dup, packed)
        if rc not in (0, -errno.EINPROGRESS):
            log.info("net: proxy %s: %s", self.proxy, os.strerror(-rc))
            return rc
        if not os.get_blocking(dup):
            pend = _Pending()
            self.pending[ino] = pend
            return call.later(self._start_behind(dup, rc, target, host, ino, pend))
        steps = self._tunnel_steps(dup, rc, target, host, SocketIO(dup, self.quick, eager=True))
        try:
            done, waiting = run_eager(steps)
        except ProxyFailure as exc:
            return self._tunnel_failed(dup, target, host, exc)
        if done:
            self.proxied[ino] = target
            return 0
        return call.later(self._tunnel_rest(steps, waiting, dup, target, host, ino))

    # (every call.later of _connect_via_proxy owns dup, and closes it)
    async def _pending_outcome(self, fd: int, ino: int, pend) -> int:
        try:
            if not pend.done:
                await pend.event.wait()
        finally:
            os.close(fd)
        if self.pending.pop(ino, None) is pend:
            return pend.result
        return 0

    async def _start_behind(self, fd, rc, target, host, ino, pend) -> int:
        trio.lowlevel.spawn_system_task(self._tunnel_behind, fd, rc, target, host, ino, pend)
        return -errno.EINPROGRESS

    async def _tunnel_steps(self, fd: int, rc: int, target: Addr, host: str | None, io) -> None:
        """Wait for the connection to the proxy, then the handshake, on our
        duplicate fd; ProxyFailure when either fails."""
        if rc == -errno.EINPROGRESS:
            await io._wait(True)
            err = _getsockopt_int(fd, socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise ProxyFailure(err, os.strerror(err))
        if self.proxy_kind == "socks5":
            await socks5_handshake(io, target, self.proxy.user, self.proxy.password, host)
        else:
            await http_connect_handshake(io, target, self.proxy.user, self.proxy.password, host)

    def _tunnel_failed(self, fd: int, target: Addr, host: str | None, exc: ProxyFailure) -> int:
        _disconnect(fd)
        log.info("net: proxy %s for %s: %s", self.proxy, host or target, exc)
        return -exc.errno

    def _tunnel_timeout(self, fd: int, target: Addr, host: str | None) -> int:
        _disconnect(fd)
        log.info("net: proxy %s: no answer for %s", self.proxy, host or target)
        return -errno.ETIMEDOUT

    async def _tunnel_rest(self, steps, waiting, fd: int, target: Addr, host: str | None, ino: int) -> int:
        """The part of a blocking socket's handshake that had to wait (fd
        is ours, closed at the end)."""
        try:
            with trio.fail_after(self.config["proxy_timeout"]):
                await finish_in_trio(steps, waiting)
        except trio.TooSlowError:
            return self._tunnel_timeout(fd, target, host)
        except ProxyFailure as exc:
            return self._tunnel_failed(fd, target, host, exc)
        finally:
            steps.close()
            trio.lowlevel.notify_closing(fd)
            os.close(fd)
        self.proxied[ino] = target
        return 0

    async def _tunnel(self, fd: int, rc: int, target: Addr, host: str | None, ino: int,
                      quick: float = 0.0) -> int:
        """The rest of a proxied connect on our duplicate fd, in trio: wait
        for the connection to the proxy, then the handshake.  0 or -errno;
        after a failure the socket is disconnected (it may be connected
        again).  quick: see quick_wait."""
        try:
            with trio.fail_after(self.config["proxy_timeout"]):
                await self._tunnel_steps(fd, rc, target, host, SocketIO(fd, quick))
        except trio.TooSlowError:
            return self._tunnel_timeout(fd, target, host)
        except ProxyFailure as exc:
            return self._tunnel_failed(fd, target, host, exc)
        self.proxied[ino] = target
        return 0

    async def _tunnel_behind(self, fd: int, rc: int, target: Addr, host: str | None, ino: int,
                             pend: _Pending) -> None:
        """_tunnel for a non-blocking socket, as a task of its own (fd is
        ours, closed at the end)."""
        try:
            pend.result = await self._tunnel(fd, rc, target, host, ino)
        except Exception:
            log.exception("net: proxied connect to %s", host or target)
            _disconnect(fd)
        finally:
            pend.event.set()
            trio.lowlevel.notify_closing(fd)
            os.close(fd)

    async def getsockopt(self, call):
        """getsockopt(SO_ERROR) on a socket whose proxied connect goes on
        behind the program: wait for it, and answer its outcome."""
        if (call.arg(1, bits=32) != socket.SOL_SOCKET or call.arg(2, bits=32) != socket.SO_ERROR
                or not self.pending or not call.args[3] or not call.args[4]):
            return None
        ino = self._inode(call, call.arg(0, bits=32))
        pend = self.pending.get(ino) if ino is not None else None
        if pend is None:
            return None
        if not pend.done:
            await pend.event.wait()
        if self.pending.pop(ino, None) is not pend:
            return None     # a second connect took the outcome meanwhile
        have = struct.unpack("<i", call.read(call.args[4], 4))[0]
        if have < 0:
            raise SyscallError(errno.EINVAL)
        n = min(have, 4)
        call.write(call.args[3], struct.pack("<i", -pend.result)[:n])
        call.write(call.args[4], struct.pack("<i", n))
        return 0

    # -- proxy_dns: the view's DNS server -----------------------------
    def _front_for(self, addr: Addr) -> DnsFront | None:
        """The view's DNS server address standing for name server addr
        (made on first use), or None when there is none to be had."""
        key = addr.v4 if addr.v4 is not None else addr.ip
        front = self.fronts.get(key)
        if front is not None:
            return front
        if len(self.fronts) >= MAX_FRONTS:
            return None
        v6 = key.version == 6
        family = AF_INET6 if v6 else AF_INET
        here = ipaddress.ip_address("::1" if v6 else "127.0.0.1")
        for _ in range(16):      # one port for both UDP and TCP
            tcp = socket.socket(family, socket.SOCK_STREAM)
            udp = None
            try:
                tcp.bind((str(here), 0))
                tcp.listen(64)
                port = tcp.getsockname()[1]
                udp = socket.socket(family, socket.SOCK_DGRAM)
                udp.bind((str(here), port))
            except OSError:
                tcp.close()
                if udp is not None:
                    udp.close()
                continue
            break
        else:
            log.warning("net: no loopback port for the DNS server of %s", key)
            return None
        tcp.setblocking(False)
        udp.setblocking(False)
        front = DnsFront(Addr(family, key, DNS_PORT), Addr(family, here, port), udp, tcp)
        self.fronts[key] = front
        self.front_at[(here, port)] = front
        if self._token is not None:
            try:
                self._token.run_sync_soon(trio.lowlevel.spawn_system_task, self._serve_front, front)
            except trio.RunFinishedError:
                pass
        log.info("net: DNS queries to %s are answered on %s", front.orig, front.host)
        return front

    async def _serve_front(self, front: DnsFront) -> None:
        try:
            with trio.CancelScope() as front.scope:
                udp = trio.socket.from_stdlib_socket(front.udp)
                tcp = trio.socket.from_stdlib_socket(front.tcp)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._serve_udp, udp)
                    nursery.start_soon(self._serve_tcp, tcp, nursery)
        except Exception:
            log.exception("net: the DNS server for %s stopped", front.orig)
        finally:
            front.udp.close()
            front.tcp.close()

    async def _serve_udp(self, sock) -> None:
        while True:
            try:
                data, peer = await sock.recvfrom(65535)
            except OSError:
                continue
            answer = dns_answer(data, self.dns)
            if answer is not None:
                try:
                    await sock.sendto(answer, peer)
                except OSError:
                    pass

    async def _serve_tcp(self, listener, nursery) -> None:
        while True:
            try:
                conn, _ = await listener.accept()
            except OSError:
                continue
            nursery.start_soon(self._serve_tcp_conn, conn)

    async def _serve_tcp_conn(self, conn) -> None:
        """DNS over TCP: 2-byte length, message; as many as the client sends."""
        with conn, trio.move_on_after(max(self.config["proxy_timeout"], 10)):
            buf = b""
            try:
                while True:
                    while len(buf) < 2 or len(buf) < 2 + int.from_bytes(buf[:2], "big"):
                        chunk = await conn.recv(65536)
                        if not chunk:
                            return
                        buf += chunk
                    n = int.from_bytes(buf[:2], "big")
                    query, buf = buf[2:2 + n], buf[2 + n:]
                    answer = dns_answer(query, self.dns)
                    if answer is None:
                        return
                    out = memoryview(len(answer).to_bytes(2, "big") + answer)
                    while out:
                        out = out[await conn.send(out):]
            except OSError:
                return

    # -- sendto / sendmsg / sendmmsg ----------------------------------
    # Datagrams a program addresses itself: the policy, port maps (a
    # loopback guest port is the host port), netcoop, proxy_dns (a query to
    # a name server goes to the view's DNS server; a placeholder cannot be
    # reached by UDP).  A rewritten destination is put in the program's
    # scratch area (call.scratch) and the call runs rewritten.

    def _datagram_dest(self, call, fd: int, addr: Addr) -> Addr:
        if self.proxy_dns:
            if self.dns.name_of(addr) is not None:
                raise SyscallError(errno.ENETUNREACH)
            if addr.port == DNS_PORT and self._sock_type(call, fd) == SOCK_DGRAM:
                front = self._front_for(addr)
                if front is None:
                    raise SyscallError(errno.ENETUNREACH)
                return front.host       # answered in the view: no policy applies
        dest = addr
        if self.remaps and addr.is_local:
            host = self.port_map.get(addr.port)
            if host is None and self.netcoop:
                host = self.coop.get((SOCK_DGRAM, addr.port))
            if host is not None:
                dest = addr.replace(port=host)
        self._deny_dest(dest)
        return dest

    def _new_name(self, call, fd: int, ptr: int, length: int) -> bytes | None:
        """The sockaddr a datagram to (ptr, length) must really carry, or
        None to leave it as it is."""
        if not ptr or length < 2 or length > SOCKADDR_MAX:
            return None
        raw = call.read(ptr, length)
        addr = parse_sockaddr(raw)
        if addr is None:
            return None
        dest = self._datagram_dest(call, fd, addr)
        return None if dest == addr else self._packed_as(dest, raw)

    def sendto(self, call):
        new = self._new_name(call, call.arg(0, bits=32), call.args[4], call.arg(5, signed=False, bits=32))
        if new is not None:
            call.rewrite(arg4=call.scratch(new), arg5=len(new))
        return None

    def sendmsg(self, call):
        fd = call.arg(0, bits=32)
        if not call.args[1]:
            return None
        if call.name != "sendmmsg":
            hdr = call.read(call.args[1], MSGHDR_LEN)
            name, namelen = struct.unpack_from("<QI", hdr)
            new = self._new_name(call, fd, name, namelen)
            if new is not None:
                ptr = call.scratch(new)
                call.rewrite(arg1=call.scratch(struct.pack("<QI", ptr, len(new)) + hdr[12:]))
            return None
        vlen = min(call.arg(2, signed=False, bits=32), UIO_MAXIOV)
        if not vlen:
            return None
        table = call.read(call.args[1], vlen * MMSGHDR_LEN)
        changes = {}
        for i in range(vlen):
            name, namelen = struct.unpack_from("<QI", table, i * MMSGHDR_LEN)
            new = self._new_name(call, fd, name, namelen)
            if new is not None:
                changes[i] = new
        if not changes:
            return None
        return self._sendmmsg_rewritten(call, fd, table, vlen, changes)

    def _sendmmsg_rewritten(self, call, fd: int, table: bytes, vlen: int, changes: dict):
        """sendmmsg with some destinations rewritten, done by the hypervisor
        on its duplicate of the socket (same socket: same source address)
        so that the program's msg_len fields get written as the kernel
        writes them.  MSG_DONTWAIT: a datagram socket whose send buffer is
        full (a blocking program would wait) has the call run rewritten by
        the kernel instead, from a copy of the table in the scratch area,
        and then its msg_len fields are not filled in (docs/net.md)."""
        dup = self._dup(call, fd)
        if dup is None:
            return None
        try:
            keep = []

            def buf(data: bytes) -> int:
                b = ctypes.create_string_buffer(data, len(data) or 1)
                keep.append(b)
                return ctypes.addressof(b)

            ours = bytearray(table)
            for i in range(vlen):
                off = i * MMSGHDR_LEN
                name, namelen, iov, iovlen, control, controllen = struct.unpack_from("<QI4xQQQQ", table, off)
                if i in changes:
                    name_b = changes[i]
                else:
                    name_b = call.read(name, namelen) if name and namelen else b""
                iovlen = min(iovlen, UIO_MAXIOV)
                vec = call.read(iov, 16 * iovlen) if iov and iovlen else b""
                our_vec = b""
                for j in range(iovlen):
                    base, n = struct.unpack_from("<QQ", vec, 16 * j)
                    data = call.read(base, n) if n else b""
                    our_vec += struct.pack("<QQ", buf(data), len(data))
                ctl = call.read(control, controllen) if control and controllen else b""
                struct.pack_into("<QI4xQQQQ", ours, off, buf(name_b) if name_b else 0, len(name_b),
                                 buf(our_vec) if our_vec else 0, iovlen, buf(ctl) if ctl else 0, len(ctl))
            arr = ctypes.create_string_buffer(bytes(ours), len(ours))
            n = _libc.sendmmsg(dup, arr, vlen, call.arg(3, bits=32) | MSG_DONTWAIT)
            if n < 0:
                err = ctypes.get_errno()
                if err in (errno.EAGAIN, errno.EWOULDBLOCK) and os.get_blocking(dup):
                    copy = bytearray(table)
                    for i, new in changes.items():
                        struct.pack_into("<QI", copy, i * MMSGHDR_LEN, call.scratch(new), len(new))
                    call.rewrite(arg1=call.scratch(bytes(copy)))
                    return None
                return -err
            for i in range(n):
                off = i * MMSGHDR_LEN + MSGHDR_LEN
                call.write(call.args[1] + off, arr.raw[off:off + 4])
            return n
        finally:
            os.close(dup)

    # -- recvfrom / recvmsg / recvmmsg --------------------------------
    # A datagram's source address, as the kernel writes it for the program,
    # is shown as the program expects (see _shown_peer): the call runs in
    # the kernel first (call.kernel()), then the address is rewritten in
    # place.  recvfrom stops only when it asks for the address.

    def _fix_addr(self, call, ptr: int, lenp: int, have: int, stype: int) -> None:
        real = struct.unpack("<i", call.read(lenp, 4))[0]
        n = min(have, real, SOCKADDR_MAX)
        if n < SIN_LEN:
            return
        raw = call.read(ptr, n)
        addr = parse_sockaddr(raw)
        if addr is None:
            return
        shown = self._shown_peer(addr, stype)
        if shown != addr:
            call.write(ptr, shown.pack(len(raw) if shown.family == AF_INET6 else SIN_LEN)[:n])

    async def _with_addr(self, call, ptr: int, lenp: int, stype: int):
        if not ptr or not lenp:
            return None
        have = struct.unpack("<i", call.read(lenp, 4))[0]
        rc = await call.kernel()
        if rc >= 0 and have > 0:
            self._fix_addr(call, ptr, lenp, have, stype)
        return None     # the kernel's result, as it is

    async def recvfrom(self, call):
        return await self._with_addr(call, call.args[4], call.args[5], SOCK_DGRAM)

    async def recvmsg(self, call):
        """recvmsg and recvmmsg: msg_name of each message received."""
        if not call.args[1]:
            return None
        mm = call.name == "recvmmsg"
        vlen = min(call.arg(2, signed=False, bits=32), UIO_MAXIOV) if mm else 1
        size = MMSGHDR_LEN if mm else MSGHDR_LEN
        if not vlen:
            return None
        before = call.read(call.args[1], vlen * size)
        names = [struct.unpack_from("<QI", before, i * size) for i in range(vlen)]
        if not any(ptr and n for ptr, n in names):
            return None
        rc = await call.kernel()
        if rc < 0:
            return None
        for i in range(rc if mm else 1):
            ptr, have = names[i]
            if ptr and have:
                self._fix_addr(call, ptr, call.args[1] + i * size + 8, have, SOCK_DGRAM)
        return None

    # -- getsockname / getpeername ------------------------------------
    def _answer_name(self, call, addr: Addr, size: int) -> int:
        """Write a sockaddr back as the kernel does: at most *addrlen bytes,
        and the real length in *addrlen."""
        lenp = call.args[2]
        have = struct.unpack("<i", call.read(lenp, 4))[0]
        if have < 0:
            raise SyscallError(errno.EINVAL)
        data = addr.pack(size)
        call.write(call.args[1], data[:have])
        call.write(lenp, struct.pack("<i", len(data)))
        return 0

    def _name(self, call, peer: bool):
        fd = call.arg(0, bits=32)
        if not call.args[1] or not call.args[2]:
            return None
        if peer and (self.proxied or self.pending):
            ino = self._inode(call, fd)
            pend = self.pending.get(ino) if ino is not None else None
            if pend is not None and not pend.done:
                raise SyscallError(errno.ENOTCONN)   # still connecting, as far as the program knows
            target = self.proxied.get(ino) if ino is not None else None
            if target is not None:
                try:
                    if parse_sockaddr(self._real_name(call, fd, True) or b"") is None:
                        return None
                except OSError:
                    return None  # not connected any more: the kernel says ENOTCONN
                return self._answer_name(call, target, SIN6_LEN if target.family == AF_INET6 else SIN_LEN)
        if not (self.remaps or self.narrowed or (peer and self.front_at)):
            return None
        dup = self._dup(call, fd)
        if dup is None:
            return None
        try:
            # what the layers below say (a parent view's port map), else the kernel
            below = None if self._alone(call) else self._next(call)
            if below is None:
                try:
                    raw = _sockname(dup, peer)
                except OSError:
                    return None
            elif below < 0:
                return below
            else:
                have = struct.unpack("<i", call.read(call.args[2], 4))[0]
                raw = call.read(call.args[1], min(have, SOCKADDR_MAX))
            addr = parse_sockaddr(raw)
            if addr is None:
                return below
            new = addr
            if not peer and self.narrowed:
                wild = self.narrowed.get(os.fstat(dup).st_ino)
                if wild is not None:
                    new = new.replace(ip=wild)
            orig = self._front_orig(addr) if peer else None
            if orig is not None:
                new = orig
            elif self.remaps and (not peer or addr.is_local):
                stype = _getsockopt_int(dup, socket.SOL_SOCKET, socket.SO_TYPE) if self.netcoop else 0
                new = new.replace(port=self._guest_port(stype, addr.port))
            if new == addr:
                return below
            return self._answer_name(call, new, len(raw))
        finally:
            os.close(dup)

    def _real_name(self, call, fd, peer):
        dup = self._dup(call, fd)
        if dup is None:
            return None
        try:
            return _sockname(dup, peer)
        finally:
            os.close(dup)

    def getsockname(self, call):
        return self._name(call, False)

    def getpeername(self, call):
        return self._name(call, True)
