"""The net module with real programs in real views: --net deny/loopback,
--port-map, --netcoop, --socks5 and --http-proxy.

Safety: traffic goes to loopback addresses only.  The tests whose programs
aim at a non-loopback address (203.0.113.5, TEST-NET-3) run the whole view
in a fresh network namespace that holds only `lo`, where 203.0.113.5 is made
a local address of lo: `unshare -n` + this file run as a script
(`python3 test_net.py netns-run ...`, see the bottom), so that a connect the
module fails to stop reaches a server of the test, never the network.

The proxies and target servers are threads of the test (or of the netns
driver) that stop by themselves; every wait has a bound."""
import ipaddress
import json
import os
import select
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from conftest import UMVIEW, _env, run_view  # noqa: E402

GUARD = 60          # seconds: failure guards only
LIFETIME = 180      # servers stop by themselves after this long
FAR = "203.0.113.5"  # a non-loopback address: only ever used inside `unshare -n`
LOOPBACK_ONLY = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
# names the netns driver's proxies resolve (proxy_dns tests); nothing else knows them
NETNS_NAMES = {"www.umview.test": FAR, "near.umview.test": "127.0.0.1"}


# ----------------------------------------------------------------------
# servers: a target that answers HTTP, and recording proxies

class _Server:
    def __init__(self, host="127.0.0.1", port=0):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.host, self.port = host, self.sock.getsockname()[1]
        self.stopping = False
        self.hits = 0
        self.deadline = time.monotonic() + LIFETIME
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stopping and time.monotonic() < self.deadline:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.hits += 1
            threading.Thread(target=self._serve_guarded, args=(conn,), daemon=True).start()
        self.sock.close()

    def _serve_guarded(self, conn):
        conn.settimeout(GUARD / 3)
        try:
            self.serve(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        self.thread.join(GUARD)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _read_head(conn, limit=16384):
    data = b""
    while b"\r\n\r\n" not in data and len(data) < limit:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


class Target(_Server):
    """Answers any request with an HTTP page naming itself."""

    def __init__(self, host="127.0.0.1", port=0, name="target"):
        self.name = name
        super().__init__(host, port)

    def serve(self, conn):
        _read_head(conn)
        body = f"hello from {self.name}\n".encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))


class RecordingProxy(_Server):
    """A SOCKS5 (no auth, or user/password) or HTTP CONNECT proxy that
    records (host, port) of each request.  behaviour: ok, refuse (target
    refused), close (hangs up mid-handshake), silent (never answers)."""

    def __init__(self, kind, behaviour="ok", allowed=LOOPBACK_ONLY, credentials=None, names=None):
        self.kind, self.behaviour, self.allowed = kind, behaviour, allowed
        self.credentials = credentials
        self.names = names or {}       # host names it knows (it resolves nothing else)
        self.requests = []
        super().__init__()

    def serve(self, conn):
        if self.kind == "socks5":
            target = self._socks5(conn)
        else:
            target = self._http(conn)
        if target is None:
            return
        upstream, reply_ok = target
        with upstream:
            conn.sendall(reply_ok)
            _relay(conn, upstream)

    def _open(self, host, port):
        """Connect upstream, loopback (or the netns' own addresses) only."""
        if host.lower() in self.names:
            host = self.names[host.lower()]
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return None, "unknown name"
        if not any(ip in n for n in self.allowed if n.version == ip.version):
            return None, "not allowed"
        try:
            return socket.create_connection((host, port), timeout=GUARD / 3), None
        except OSError as exc:
            return None, exc.strerror

    def _socks5(self, conn):
        ver, n = conn.recv(2)
        methods = _recv_exact(conn, n)
        if self.behaviour == "close":
            return None
        if self.behaviour == "silent":
            conn.recv(1)  # never answers: holds the line until the client gives up
            return None
        if self.credentials:
            if 2 not in methods:
                conn.sendall(b"\x05\xff")
                return None
            conn.sendall(b"\x05\x02")
            _, ulen = _recv_exact(conn, 2)
            user = _recv_exact(conn, ulen)
            (plen,) = _recv_exact(conn, 1)
            password = _recv_exact(conn, plen)
            ok = (user.decode(), password.decode()) == self.credentials
            conn.sendall(b"\x01" + (b"\x00" if ok else b"\x01"))
            if not ok:
                return None
        else:
            conn.sendall(b"\x05\x00")
        ver, cmd, _, atyp = _recv_exact(conn, 4)
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, _recv_exact(conn, 4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, _recv_exact(conn, 16))
        else:
            (ln,) = _recv_exact(conn, 1)
            host = _recv_exact(conn, ln).decode()
        (port,) = struct.unpack("!H", _recv_exact(conn, 2))
        self.requests.append((host, port))
        if self.behaviour == "refuse":
            conn.sendall(b"\x05\x05\x00\x01" + bytes(6))
            return None
        upstream, why = self._open(host, port)
        if upstream is None:
            code = {"not allowed": b"\x05\x02", "unknown name": b"\x05\x04"}.get(why, b"\x05\x05")
            conn.sendall(code + b"\x00\x01" + bytes(6))
            return None
        return upstream, b"\x05\x00\x00\x01" + bytes(6)

    def _http(self, conn):
        if self.behaviour == "silent":
            conn.recv(65536)  # reads the request, never answers, until the client gives up
            conn.recv(1)
            return None
        head = _read_head(conn)
        if self.behaviour == "close":
            return None
        words = head.split(b"\r\n", 1)[0].split()
        if len(words) < 2 or words[0] != b"CONNECT":
            conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
            return None
        hostport = words[1].decode()
        host, _, port = hostport.rpartition(":")
        host = host.strip("[]")
        self.requests.append((host, int(port)))
        if self.behaviour == "refuse":
            conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\n\r\n")
            return None
        upstream, why = self._open(host, int(port))
        if upstream is None:
            conn.sendall(b"HTTP/1.1 %s\r\n\r\n" % (b"403 Forbidden" if why == "not allowed"
                                                   else b"502 Bad Gateway"))
            return None
        return upstream, b"HTTP/1.1 200 Connection established\r\nProxy-Agent: test\r\n\r\n"


def _recv_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def _relay(a, b):
    deadline = time.monotonic() + GUARD
    socks = [a, b]
    while socks and time.monotonic() < deadline:
        r, _, _ = select.select(socks, [], [], 1)
        for s in r:
            data = s.recv(65536)
            other = b if s is a else a
            if not data:
                try:
                    other.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                socks.remove(s)
            else:
                other.sendall(data)


def closed_port():
    """A loopback port nobody listens on (bound, not listening, so that no
    one else takes it while the test runs)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s, s.getsockname()[1]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def view(cmd, *options, **kw):
    return run_view(cmd, *options, timeout=kw.pop("timeout", GUARD * 2), **kw)


def py(code):
    return [sys.executable, "-c", code]


# A python program that reports what each network operation did, one line each.
PROBE = r"""
import errno, socket, sys
def t(name, f):
    try:
        r = f()
        print(name, "OK" if r is None else r)
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
    sys.stdout.flush()
def conn(host, port, fam=socket.AF_INET):
    s = socket.socket(fam)
    s.settimeout(20)
    try:
        s.connect((host, port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return s.recv(4096).split(b"\r\n")[-1].decode().strip()
    finally:
        s.close()
"""


def probe(*lines):
    return py(PROBE + "\n".join(lines))


# ----------------------------------------------------------------------
# --net deny / --net loopback: python, curl, a static binary; AF_UNIX

def test_deny_python():
    with Target() as tgt:
        out = view(probe(
            f"t('inet-socket', lambda: socket.socket().close())",
            f"t('connect-loopback', lambda: conn('127.0.0.1', {tgt.port}))",
            f"t('connect6-loopback', lambda: conn('::1', {tgt.port}, socket.AF_INET6))",
            f"t('udp-sendto', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
            f".sendto(b'x', ('127.0.0.1', {tgt.port})) and None)",
            "t('packet', lambda: socket.socket(socket.AF_PACKET, socket.SOCK_RAW).close())",
            "t('netlink-route', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0).close())",
            "t('netlink-uevent', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 15).close())",
            "a, b = socket.socketpair(); a.send(b'hi'); t('unix-pair', lambda: b.recv(2).decode())",
        ), "--net", "deny")
    assert tgt.hits == 0
    lines = out.stdout.decode().splitlines()
    assert out.returncode == 0, out.stderr
    assert lines == ["inet-socket OK", "connect-loopback ENETUNREACH", "connect6-loopback ENETUNREACH",
                     "udp-sendto ENETUNREACH", "packet EAFNOSUPPORT", "netlink-route EPROTONOSUPPORT",
                     "netlink-uevent OK", "unix-pair hi"], out.stdout


def test_af_unix_still_works(tmp_path):
    """A unix-socket server and client inside a deny view talk as usual."""
    path = tmp_path / "sock"
    code = f"""
import socket, threading
srv = socket.socket(socket.AF_UNIX); srv.bind({str(path)!r}); srv.listen()
def serve():
    c, _ = srv.accept(); c.sendall(c.recv(100).upper()); c.close()
th = threading.Thread(target=serve); th.start()
cl = socket.socket(socket.AF_UNIX); cl.connect({str(path)!r}); cl.sendall(b"ping")
print(cl.recv(100).decode()); th.join()
"""
    out = view(py(code), "--net", "deny")
    assert out.returncode == 0, out.stderr
    assert out.stdout == b"PING\n"


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed")
def test_deny_and_loopback_curl():
    with Target() as tgt:
        url = f"http://127.0.0.1:{tgt.port}/"
        curl = ["curl", "-sS", "--max-time", "20", url]
        denied = view(curl, "--net", "deny")
        allowed = view(curl, "--net", "loopback")
    assert denied.returncode == 7, denied.stderr   # CURLE_COULDNT_CONNECT
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout == b"hello from target\n"


def test_deny_and_loopback_static(progs):
    client = progs["net_client_static"]
    with Target() as tgt:
        denied = view([client, "127.0.0.1", str(tgt.port)], "--net", "deny")
        allowed = view([client, "127.0.0.1", str(tgt.port), "GET / HTTP/1.0\n\n"], "--net", "loopback")
        allowed_nb = view([client, "-n", "127.0.0.1", str(tgt.port)], "--net", "loopback")
        bound = view([client, "-b", "0.0.0.0", "0"], "--net", "loopback")
    assert denied.stdout == b"connect ENETUNREACH\n"
    assert b"connect OK\n" in allowed.stdout and allowed.stdout.endswith(b"hello from target\n")
    assert allowed_nb.stdout.startswith(b"connect OK\n"), allowed_nb.stdout
    assert bound.stdout.startswith(b"bind OK\nlocal 0.0.0.0 "), bound.stdout


def test_loopback_binds():
    """Loopback binds work; a wildcard bind is narrowed to loopback (and
    still reported as the wildcard); other addresses are refused."""
    code = PROBE + r"""
import subprocess
s = socket.socket(); s.bind(("0.0.0.0", 0)); s.listen()
port = s.getsockname()[1]
print("name", s.getsockname()[0])
ss = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True).stdout.split()
print("really", ss[3].rsplit(":", 1)[0] if len(ss) > 3 else "?")
t("bind-foreign", lambda: socket.socket().bind(("192.0.2.1", 0)))
t("bind-loopback", lambda: socket.socket().bind(("127.0.0.2", 0)))
u = socket.socket(); u.listen()
print("autobind", u.getsockname()[0])
ss = subprocess.run(["ss", "-Hltn", f"sport = :{u.getsockname()[1]}"], capture_output=True,
                    text=True).stdout.split()
print("really", ss[3].rsplit(":", 1)[0] if len(ss) > 3 else "?")
"""
    out = view(py(code), "--net", "loopback")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "name 0.0.0.0"
    if shutil.which("ss"):
        assert lines[1] == "really 127.0.0.1"
    assert lines[2:5] == ["bind-foreign EADDRNOTAVAIL", "bind-loopback OK", "autobind 0.0.0.0"]
    if shutil.which("ss"):
        assert lines[5] == "really 127.0.0.1"


# ----------------------------------------------------------------------
# inside a network namespace: non-loopback destinations

def netns_run(spec, timeout=GUARD * 3):
    """Run this file as the netns driver in a fresh network namespace (only
    lo, with FAR added to it); returns its JSON report."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        pytest.skip("needs root, unshare and ip")
    out = subprocess.run(["unshare", "-n", sys.executable, str(Path(__file__)), "netns-run"],
                         input=json.dumps(spec).encode(), capture_output=True, env=_env(),
                         timeout=timeout)
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    return json.loads(out.stdout)


def test_netns_loopback_and_deny_far_address(progs):
    """FAR is reachable natively in the namespace; the view's policy stops it."""
    client = progs["net_client_static"]
    get = (f"import urllib.request; print(urllib.request.urlopen('http://{FAR}:80/', timeout=20)"
           f".read().decode().strip())")
    rep = netns_run({"runs": [
        {"cmd": [client, FAR, "80"], "umview": None},
        {"cmd": [client, FAR, "80"], "umview": ["--net", "loopback"]},
        {"cmd": [client, "127.0.0.1", "80"], "umview": ["--net", "loopback"]},
        {"cmd": [client, "-n", FAR, "80"], "umview": ["--net", "deny"]},
        {"cmd": [sys.executable, "-c", get], "umview": ["--net", "loopback"]},
        {"cmd": ["curl", "-sS", "--max-time", "10", f"http://{FAR}/"], "umview": ["--net", "loopback"]},
    ]})
    native, far, near, deny_nb, urllib_far, curl_far = rep["runs"]
    assert native["stdout"].startswith("connect OK\n"), native
    assert far["stdout"] == "connect ENETUNREACH\n", far
    assert near["stdout"].startswith("connect OK\n"), near
    assert deny_nb["stdout"] == "connect ENETUNREACH\n", deny_nb
    assert "Network is unreachable" in urllib_far["stderr"], urllib_far
    if shutil.which("curl"):
        assert curl_far["returncode"] == 7, curl_far


def test_netns_proxies_far_address(progs):
    """The default no_proxy (loopback) in action: connects to FAR go through
    the proxy, loopback ones stay direct; --net loopback still lets proxied
    connects out."""
    client = progs["net_client_static"]
    get = (f"import urllib.request; print(urllib.request.urlopen('http://{FAR}:80/', timeout=20)"
           f".read().decode().strip())")
    rep = netns_run({"runs": [
        {"cmd": [sys.executable, "-c", get], "umview": ["--socks5", "127.0.0.1:{socks5}"]},
        {"cmd": [client, "127.0.0.1", "80", "GET / HTTP/1.0\n\n"], "umview": ["--socks5", "127.0.0.1:{socks5}"]},
        {"cmd": [client, "-n", FAR, "80", "GET / HTTP/1.0\n\n"],
         "umview": ["--http-proxy", "127.0.0.1:{http}", "--net", "loopback"]},
        {"cmd": ["curl", "-sS", "--max-time", "10", f"http://{FAR}/"],
         "umview": ["--socks5", "127.0.0.1:{socks5}"]},
    ]})
    py_run, direct, static_http, curl_run = rep["runs"]
    assert py_run["stdout"] == f"hello from {FAR}\n", py_run
    assert direct["stdout"].endswith("hello from 127.0.0.1\n"), direct
    assert static_http["stdout"].startswith(f"connect OK\npeer {FAR} 80\n"), static_http
    assert static_http["stdout"].endswith(f"hello from {FAR}\n"), static_http
    socks_asked = [tuple(r) for r in rep["socks5"]]
    assert socks_asked.count((FAR, 80)) == (2 if shutil.which("curl") else 1), socks_asked
    assert ("127.0.0.1", 80) not in socks_asked
    assert [tuple(r) for r in rep["http"]] == [(FAR, 80)]
    if shutil.which("curl"):
        assert curl_run["stdout"] == f"hello from {FAR}\n", curl_run


def test_netns_nested_view_cannot_leave_parent_policy(progs):
    """A view nested in a `--net loopback` view cannot get out through a
    proxy of its own: the parent's check sees the proxy's address."""
    client = progs["net_client_static"]
    nested = [sys.executable, "-m", "umview_py", "--no-proxy", ""]
    rep = netns_run({"runs": [
        {"cmd": nested + ["--socks5", f"{FAR}:1080", "--", client, "127.0.0.1", "80"],
         "umview": ["--net", "loopback"]},
        {"cmd": nested + ["--socks5", "127.0.0.1:{socks5}", "--", client, FAR, "80", "GET / HTTP/1.0\n\n"],
         "umview": ["--net", "loopback"]},
        {"cmd": nested + ["--port-map", "8000:80", "--", client, "127.0.0.1", "8000"],
         "umview": ["--net", "deny"]},
    ]})
    far_proxy, near_proxy, mapped = rep["runs"]
    assert far_proxy["stdout"] == "connect ENETUNREACH\n", far_proxy
    assert near_proxy["stdout"].startswith(f"connect OK\npeer {FAR} 80\n"), near_proxy
    assert near_proxy["stdout"].endswith(f"hello from {FAR}\n"), near_proxy
    assert mapped["stdout"] == "connect ENETUNREACH\n", mapped
    assert [tuple(r) for r in rep["socks5"]] == [(FAR, 80)]


# ----------------------------------------------------------------------
# --port-map

def _http_get(port, timeout=20):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET /index.txt HTTP/1.0\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data


def _readline(stream, timeout=GUARD):
    """One line from a pipe, or fail after timeout."""
    r, _, _ = select.select([stream], [], [], timeout)
    if not r:
        raise AssertionError(f"no line within {timeout}s")
    return stream.readline()


# A client that fetches index.txt from the server the view runs on port
# 8000 (started once the server said it listens), prints it and its peer's port.
CLIENT_8000 = """
import socket, urllib.request
page = urllib.request.urlopen("http://127.0.0.1:8000/index.txt", timeout=5).read()
c = socket.create_connection(("127.0.0.1", 8000))
print("client got", page.decode().strip(), "peer", c.getpeername()[1], flush=True)
"""


def _server_and_client(tmp_path, d):
    """A shell script for a view: http.server on 8000 serving d in the
    background, the client, then wait for a line on d/stop and stop."""
    (tmp_path / "client.py").write_text(CLIENT_8000)
    os.mkfifo(d / "stop")
    os.mkfifo(d / "ready")
    # http.server prints "Serving HTTP on ..." once its socket listens
    return (f"{sys.executable} -u -m http.server 8000 --bind 127.0.0.1 --directory {d} "
            f"> {d}/ready 2>> {d}/server.out & read ready < {d}/ready; "
            f"echo \"$ready\" >> {d}/server.out; "
            f"{sys.executable} {tmp_path}/client.py; read line < {d}/stop; kill $!; wait")


def test_port_map_http_server(tmp_path):
    """`python3 -m http.server 8000` in the view really listens on the host
    port (seen from outside); a client in the view connecting to 8000 gets
    the page; the server's getsockname says 8000."""
    host = free_port()
    (tmp_path / "index.txt").write_text("the page\n")
    script = _server_and_client(tmp_path, tmp_path)
    proc = subprocess.Popen(UMVIEW + ["--port-map", f"8000:{host}", "--", "sh", "-c", script],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())
    try:
        line = _readline(proc.stdout)
        outside = _http_get(host)      # from outside: the host port
        with open(tmp_path / "stop", "w") as f:
            f.write("stop\n")
        out, err = proc.communicate(timeout=GUARD)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert line == b"client got the page peer 8000\n", (line, err)
    assert outside.endswith(b"the page\n"), outside
    server_out = (tmp_path / "server.out").read_text()
    assert "Serving HTTP on 127.0.0.1 port 8000" in server_out, server_out


def test_port_map_static_and_list():
    """Several maps in one value; getsockname, getpeername and accepted
    sockets show the guest ports; ss shows the host ports."""
    h1, h2 = free_port(), free_port()
    code = PROBE + f"""
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8001)); s.listen()
t2 = socket.socket(socket.AF_INET6); t2.bind(("::1", 8002)); t2.listen()
print("names", s.getsockname()[1], t2.getsockname()[1])
import subprocess
out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
print("host", ":{h1} " in out, ":{h2} " in out)
c = socket.create_connection(("127.0.0.1", 8001)); a, _ = s.accept()
print("peer", c.getpeername()[1], "accepted-local", a.getsockname()[1])
c6 = socket.create_connection(("::1", 8002)); print("peer6", c6.getpeername()[1])
"""
    out = view(py(code), "-p", f"net,port_map=8001:{h1}+8002:{h2}")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[0] == "names 8001 8002"
    if shutil.which("ss"):
        assert lines[1] == "host True True"
    assert lines[2:] == ["peer 8001 accepted-local 8001", "peer6 8002"]


def test_port_map_udp_connected():
    """UDP: bind and connect are remapped; the server answers the client."""
    host = free_port()
    code = f"""
import socket
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(("127.0.0.1", 8004))
cl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); cl.settimeout(20); srv.settimeout(20)
cl.connect(("127.0.0.1", 8004)); cl.send(b"ping")
data, peer = srv.recvfrom(100); srv.sendto(data.upper(), peer)
print(cl.recv(100).decode(), srv.getsockname()[1], cl.getpeername()[1])
"""
    out = view(py(code), "--port-map", f"8004:{host}")
    assert out.stdout == b"PING 8004 8004\n", out.stderr


def test_port_map_static_binary(progs):
    host = free_port()
    out = view([progs["net_client_static"], "-b", "127.0.0.1", "8003"], "--port-map", f"8003:{host}")
    assert out.stdout == b"bind OK\nlocal 127.0.0.1 8003\n"


def test_port_map_udp_unconnected_and_accept():
    """Datagrams the program addresses itself (sendto, sendmsg) to a guest
    port reach the host port; their answers (recvfrom, recvmsg) come from
    the guest port.  A peer bound to a mapped port: getpeername shows its
    guest port, accept its host port (accept is not trapped: docs/net.md).
    The mapped host ports are seen from outside too."""
    h_udp, h_tcp, h_cli, h_out = free_port(), free_port(), free_port(), free_port()
    outside = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    outside.bind(("127.0.0.1", h_out))
    outside.settimeout(GUARD)
    code = f"""
import socket
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(("127.0.0.1", 8005)); srv.settimeout(20)
cl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); cl.settimeout(20)
cl.sendto(b"ping", ("127.0.0.1", 8005))
data, peer = srv.recvfrom(100); srv.sendto(data.upper(), peer)
data, src = cl.recvfrom(100)
print("recvfrom", data.decode(), src[1])
cl.sendmsg([b"pi", b"ng"], [], 0, ("127.0.0.1", 8005))
data, peer = srv.recvfrom(100); srv.sendto(data.upper(), peer)
data, anc, flags, src = cl.recvmsg(100)
print("recvmsg", data.decode(), src[1])
cl.sendto(b"to the outside", ("127.0.0.1", 8008))
ls = socket.socket(); ls.bind(("127.0.0.1", 8006)); ls.listen()
c = socket.socket(); c.bind(("127.0.0.1", 8007)); c.connect(("127.0.0.1", 8006))
a, peer = ls.accept()
print("accept", peer[1], "local", c.getsockname()[1], "peer", a.getpeername()[1])
c2 = socket.socket(); c2.connect(("127.0.0.1", 8006))
a2, peer2 = ls.accept()
print("ephemeral", peer2[1] == c2.getsockname()[1] != 8007)
"""
    try:
        out = view(py(code), "--port-map", f"8005:{h_udp}", "--port-map", f"8006:{h_tcp}",
                   "--port-map", f"8007:{h_cli}", "--port-map", f"8008:{h_out}")
        got, src = outside.recvfrom(100)
    finally:
        outside.close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() == ["recvfrom PING 8005", "recvmsg PING 8005",
                                                f"accept {h_cli} local 8007 peer 8007", "ephemeral True"]
    assert got == b"to the outside"


def test_netcoop_udp_unconnected():
    """netcoop: a datagram server on a fixed port really gets a free one;
    sendto the fixed port reaches it, and its answer comes from that port."""
    code = """
import socket, subprocess
srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); srv.bind(("127.0.0.1", 8009)); srv.settimeout(20)
cl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); cl.settimeout(20)
cl.sendto(b"ping", ("127.0.0.1", 8009))
data, peer = srv.recvfrom(100); srv.sendto(data.upper(), peer)
data, src = cl.recvfrom(100)
print(data.decode(), src[1], srv.getsockname()[1])
"""
    out = view(py(code), "--netcoop", "yes")
    assert out.stdout == b"PING 8009 8009\n", out.stderr


def test_repeated_flags_and_lsmod():
    """--port-map and --no-proxy may be given more than once."""
    h1, h2 = free_port(), free_port()
    code = """
import socket, subprocess
for port in (8011, 8012):
    s = socket.socket(); s.bind(("127.0.0.1", port)); s.listen(); print(s.getsockname()[1])
print(subprocess.run(["umview-lsmod"], capture_output=True, text=True).stdout.splitlines()[1])
"""
    out = view(py(code), "--port-map", f"8011:{h1}", "--port-map", f"8012:{h2}",
               "--no-proxy", "10.0.0.0/8", "--no-proxy", "fd00::/8", "--socks5", "127.0.0.1:1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.decode().splitlines()
    assert lines[:2] == ["8011", "8012"]
    assert f"port_map=8011:{h1};8012:{h2}" in lines[2] and "no_proxy=10.0.0.0/8;fd00::/8" in lines[2], lines


# ----------------------------------------------------------------------
# --netcoop: two views, one port

def test_netcoop_two_servers_same_port(tmp_path):
    """Two views run `python3 -m http.server 8000` at the same time; the
    client of each gets its own view's page."""
    procs = []
    for name in ("one", "two"):
        d = tmp_path / name
        d.mkdir()
        (d / "index.txt").write_text(f"view {name}\n")
        procs.append((d, subprocess.Popen(
            UMVIEW + ["--netcoop", "yes", "--", "sh", "-c", _server_and_client(tmp_path, d)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env())))
    try:
        # each client has its page while its own server still runs, so when
        # both have answered the two servers were up together
        lines = [_readline(p.stdout) for _, p in procs]
        for d, _ in procs:
            with open(d / "stop", "w") as f:
                f.write("stop\n")
        for _, p in procs:
            p.communicate(timeout=GUARD)
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert lines == [b"client got view one peer 8000\n", b"client got view two peer 8000\n"], lines
    for d, _ in procs:
        assert "Serving HTTP on 127.0.0.1 port 8000" in (d / "server.out").read_text()


# ----------------------------------------------------------------------
# proxies, on loopback (no_proxy= empty: loopback is proxied too)

@pytest.fixture
def target():
    with Target() as t:
        yield t


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_proxy_python_static_curl(kind, target, progs):
    flag = "--socks5" if kind == "socks5" else "--http-proxy"
    with RecordingProxy(kind) as proxy:
        opts = [flag, f"127.0.0.1:{proxy.port}", "--no-proxy", ""]
        py_out = view(probe(
            f"t('py', lambda: conn('127.0.0.1', {target.port}))",
            "import urllib.request",
            f"t('urllib', lambda: urllib.request.urlopen('http://127.0.0.1:{target.port}/', timeout=20)"
            ".read().decode().strip())",
            f"s = socket.create_connection(('127.0.0.1', {target.port})); print('peer', s.getpeername())",
            # asyncio: a non-blocking connect
            "import asyncio",
            "async def go():",
            f"    r, w = await asyncio.open_connection('127.0.0.1', {target.port})",
            "    w.write(b'GET / HTTP/1.0\\r\\n\\r\\n'); await w.drain()",
            "    print('asyncio', (await r.read()).split(b'\\r\\n')[-1].decode().strip())",
            "asyncio.run(go())",
        ), *opts)
        st = view([progs["net_client_static"], "127.0.0.1", str(target.port), "GET / HTTP/1.0\n\n"], *opts)
        st_nb = view([progs["net_client_static"], "-n", "127.0.0.1", str(target.port), "GET / HTTP/1.0\n\n"],
                     *opts)
        curl = None
        if shutil.which("curl"):
            curl = view(["curl", "-sS", "--max-time", "20", f"http://127.0.0.1:{target.port}/"], *opts)
    assert py_out.returncode == 0, py_out.stderr
    assert py_out.stdout.decode().splitlines() == [
        "py hello from target", "urllib hello from target", f"peer ('127.0.0.1', {target.port})",
        "asyncio hello from target"]
    for out in (st, st_nb):
        assert out.stdout.startswith(f"connect OK\npeer 127.0.0.1 {target.port}\n".encode()), out.stdout
        assert out.stdout.endswith(b"hello from target\n"), out.stdout
    n = 6
    if curl is not None:
        assert curl.returncode == 0, curl.stderr
        assert curl.stdout == b"hello from target\n"
        n += 1
    assert proxy.requests == [("127.0.0.1", target.port)] * n


def test_proxy_and_port_map_readonly_sockaddr(target, progs):
    """A sockaddr in a read-only page is rewritten (and put back) all the same."""
    client = progs["net_client_static"]
    with RecordingProxy("socks5") as proxy:
        via_proxy = view([client, "-r", "127.0.0.1", str(target.port), "GET / HTTP/1.0\n\n"],
                         "--socks5", f"127.0.0.1:{proxy.port}", "--no-proxy", "")
    mapped = view([client, "-r", "127.0.0.1", "8000", "GET / HTTP/1.0\n\n"],
                  "--port-map", f"8000:{target.port}")
    for out in (via_proxy, mapped):
        assert out.stdout.startswith(b"connect OK\n"), out.stdout
        assert out.stdout.endswith(b"hello from target\n"), out.stdout
    assert b"peer 127.0.0.1 8000\n" in mapped.stdout
    assert proxy.requests == [("127.0.0.1", target.port)]


def test_proxy_default_excludes_loopback(target):
    with RecordingProxy("socks5") as proxy:
        out = view(probe(f"t('py', lambda: conn('127.0.0.1', {target.port}))"),
                   "--socks5", f"127.0.0.1:{proxy.port}")
    assert out.stdout == b"py hello from target\n"
    assert proxy.requests == []


def test_socks5_credentials(target):
    with RecordingProxy("socks5", credentials=("alice", "s3cret")) as proxy:
        good = view(probe(f"t('py', lambda: conn('127.0.0.1', {target.port}))"),
                    "-p", f"net,socks5=alice:s3cret@127.0.0.1:{proxy.port},no_proxy=")
        bad = view(probe(f"t('py', lambda: conn('127.0.0.1', {target.port}))"),
                   "-p", f"net,socks5=alice:wrong@127.0.0.1:{proxy.port},no_proxy=")
    assert good.stdout == b"py hello from target\n", good.stderr
    assert bad.stdout == b"py ECONNREFUSED\n", bad.stderr


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_proxy_failures(kind, target, progs):
    """Proxy down, proxy refusing the target, proxy hanging up mid-handshake,
    proxy silent (timeout): what a real connect would say."""
    flag = "--socks5" if kind == "socks5" else "--http-proxy"
    client = progs["net_client_static"]
    holder, down = closed_port()
    results = {}
    try:
        for behaviour in ("refuse", "close", "silent"):
            with RecordingProxy(kind, behaviour) as proxy:
                opts = ["-p", f"net,{kind if kind == 'socks5' else 'http_proxy'}=127.0.0.1:{proxy.port},"
                        "no_proxy=,proxy_timeout=1"]
                results[behaviour] = (view([client, "127.0.0.1", str(target.port)], *opts).stdout,
                                      view([client, "-n", "127.0.0.1", str(target.port)], *opts).stdout)
        down_py = view(probe(f"t('py', lambda: conn('127.0.0.1', {target.port}))"),
                       flag, f"127.0.0.1:{down}", "--no-proxy", "")
        down_st = view([client, "-n", "127.0.0.1", str(target.port)], flag, f"127.0.0.1:{down}",
                       "--no-proxy", "")
    finally:
        holder.close()
    assert results["refuse"] == (b"connect ECONNREFUSED\n",) * 2
    assert results["close"] == (b"connect ECONNREFUSED\n",) * 2
    assert results["silent"] == (b"connect ETIMEDOUT\n",) * 2
    assert down_py.stdout == b"py ECONNREFUSED\n", down_py.stderr
    assert down_st.stdout == b"connect ECONNREFUSED\n"


EPOLL_CONNECT = PROBE + r"""
import select
def nb(host, port, get=True):
    s = socket.socket(); s.setblocking(False)
    rc = s.connect_ex((host, port))
    ep = select.epoll(); ep.register(s, select.EPOLLOUT | select.EPOLLET)
    ready = ep.poll(20)
    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    out = [errno.errorcode.get(rc, rc), "writable" if ready else "timeout", errno.errorcode.get(err, err)]
    if err == 0 and get:
        s.setblocking(True); s.settimeout(20)
        out.append(s.getpeername()[1])
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        out.append(s.recv(4096).split(b"\r\n")[-1].decode().strip())
    print(*out, flush=True)
"""


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_proxy_nonblocking_epoll(kind, target):
    """Non-blocking connects through a proxy behave as without one:
    EINPROGRESS, then epoll says writable, then SO_ERROR says 0 (or why it
    failed: the proxy refusing, down, or silent past proxy_timeout)."""
    key = "socks5" if kind == "socks5" else "http_proxy"
    holder, down = closed_port()
    out = {}
    try:
        out["direct"] = view(py(EPOLL_CONNECT + f"nb('127.0.0.1', {target.port})")).stdout
        for behaviour in ("ok", "refuse", "silent"):
            with RecordingProxy(kind, behaviour) as proxy:
                out[behaviour] = view(py(EPOLL_CONNECT + f"nb('127.0.0.1', {target.port})"),
                                      "-p", f"net,{key}=127.0.0.1:{proxy.port},no_proxy=,proxy_timeout=1").stdout
        out["down"] = view(py(EPOLL_CONNECT + f"nb('127.0.0.1', {target.port})"),
                           "-p", f"net,{key}=127.0.0.1:{down},no_proxy=").stdout
    finally:
        holder.close()
    page = f"EINPROGRESS writable 0 {target.port} hello from target\n".encode()
    assert out["direct"] == page                 # without the proxy: the reference
    assert out["ok"] == page
    assert out["refuse"] == b"EINPROGRESS writable ECONNREFUSED\n"
    assert out["silent"] == b"EINPROGRESS writable ETIMEDOUT\n"
    assert out["down"] == b"EINPROGRESS writable ECONNREFUSED\n"


class BarrierProxy(RecordingProxy):
    """A SOCKS5 proxy that answers no greeting until n clients have sent
    theirs: only a program whose connects all go on at once gets through."""

    def __init__(self, n):
        self.barrier = threading.Barrier(n, timeout=GUARD / 3)
        super().__init__("socks5")

    def _socks5(self, conn):
        ver, n = conn.recv(2)
        _recv_exact(conn, n)
        try:
            self.barrier.wait()
        except threading.BrokenBarrierError:
            return None
        conn.sendall(b"\x05\x00")
        ver, cmd, _, atyp = _recv_exact(conn, 4)
        host = socket.inet_ntop(socket.AF_INET, _recv_exact(conn, 4))
        (port,) = struct.unpack("!H", _recv_exact(conn, 2))
        self.requests.append((host, port))
        upstream, _ = self._open(host, port)
        return upstream, b"\x05\x00\x00\x01" + bytes(6)


def test_proxy_many_connects_at_once(target):
    """An event loop opens many connections at once through the proxy (each
    non-blocking connect returns EINPROGRESS while its handshake goes on)."""
    n = 6
    code = f"""
import asyncio
async def one():
    r, w = await asyncio.open_connection("127.0.0.1", {target.port})
    w.write(b"GET / HTTP/1.0\\r\\n\\r\\n"); await w.drain()
    return (await r.read()).split(b"\\r\\n")[-1].decode().strip()
async def main():
    print(sorted(set(await asyncio.gather(*[one() for _ in range({n})]))))
asyncio.run(main())
"""
    with BarrierProxy(n) as proxy:
        out = view(py(code), "--socks5", f"127.0.0.1:{proxy.port}", "--no-proxy", "")
    assert out.stdout == b"['hello from target']\n", out.stderr
    assert proxy.requests == [("127.0.0.1", target.port)] * n


def test_proxy_retry_after_failure(target):
    """After the proxy refused, the same socket can connect again (as after
    a failed connect)."""
    with RecordingProxy("socks5", "refuse") as proxy:
        code = PROBE + f"""
s = socket.socket()
t("first", lambda: s.connect(("127.0.0.1", {target.port})))
t("again", lambda: s.connect(("127.0.0.1", {target.port})))
"""
        out = view(py(code), "--socks5", f"127.0.0.1:{proxy.port}", "--no-proxy", "")
    assert out.stdout == b"first ECONNREFUSED\nagain ECONNREFUSED\n"
    assert len(proxy.requests) == 2


# ----------------------------------------------------------------------
# bad input: one line, exit status 2

@pytest.mark.parametrize("options", [
    ["--net", "sometimes"],
    ["--port-map", "8000"],
    ["--port-map", "8000:70000"],
    ["--port-map", "80:x"],
    ["--port-map", "80:81;80:82"],
    ["--socks5", "127.0.0.1:0"],
    ["--socks5", "[::1:1080"],
    ["--socks5", "::1:1080"],
    ["--http-proxy", "127.0.0.1"],
    ["--http-proxy", "no such host!:80"],
    ["--no-proxy", "10.0.0.0/33"],
    ["--socks5", "127.0.0.1:1080", "--http-proxy", "127.0.0.1:3128"],
    ["-p", "net,proxy_timeout=0"],
    ["--proxy-dns", "yes"],                                  # no proxy to resolve through
    ["--socks5", "127.0.0.1:1080", "--proxy-dns", "maybe"],
    ["-p", "net,socks5=127.0.0.1:1080,proxy_dns=yes,dns_subnet=10.0.0.0/30"],
    ["--port-map", "8000:18000", "--port-map", "8000:18001"],  # repeated flags are one list
])
def test_bad_options(options):
    out = subprocess.run(UMVIEW + options + ["--", "true"], capture_output=True, env=_env(),
                         timeout=GUARD)
    assert out.returncode == 2, out
    err = out.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("umview: ") and "net" in err, err


# ----------------------------------------------------------------------
# the netns driver: `unshare -n python3 test_net.py netns-run` with a JSON
# spec on stdin: {"runs": [{"cmd": [...], "umview": [options] or null}]}.
# Sets lo up, adds FAR to it, starts a target on FAR:80 and 127.0.0.1:80,
# a SOCKS5 and an HTTP proxy on 127.0.0.1 (allowed to reach FAR: it is a
# local address here), runs each command (in a view when "umview" is a
# list; "{socks5}" and "{http}" in it or in cmd become the proxies'
# ports), and
# prints a JSON report.

def _netns_main():
    spec = json.load(sys.stdin)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    if len([ln for ln in links.splitlines() if ln.strip()]) != 1 or ": lo:" not in links:
        sys.exit(f"refusing to run outside a network namespace that holds only lo: {links}")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{FAR}/32", "dev", "lo"], check=True)
    allowed = LOOPBACK_ONLY + (ipaddress.ip_network(f"{FAR}/32"),)
    far, near = Target(FAR, 80, name=FAR), Target("127.0.0.1", 80, name="127.0.0.1")
    socks, http = (RecordingProxy(kind, allowed=allowed, names=NETNS_NAMES) for kind in ("socks5", "http"))
    report = {"runs": []}
    try:
        for run in spec["runs"]:
            def ports(words):
                return [w.replace("{socks5}", str(socks.port)).replace("{http}", str(http.port))
                        for w in words]

            cmd = ports(run["cmd"])
            if cmd[0] == "curl" and not shutil.which("curl"):
                report["runs"].append({"stdout": "", "stderr": "no curl", "returncode": None})
                continue
            if run["umview"] is not None:
                cmd = UMVIEW + ports(run["umview"]) + ["--"] + cmd
            out = subprocess.run(cmd, capture_output=True, env=_env(), timeout=GUARD)
            report["runs"].append({"stdout": out.stdout.decode(errors="replace"),
                                   "stderr": out.stderr.decode(errors="replace"),
                                   "returncode": out.returncode})
    finally:
        for s in (far, near, socks, http):
            s.stop()
    report["socks5"] = socks.requests
    report["http"] = http.requests
    json.dump(report, sys.stdout)


if __name__ == "__main__" and sys.argv[1:] == ["netns-run"]:
    _netns_main()
