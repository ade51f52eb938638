"""A port map's connects and getsocknames made by the program itself
(Claims.connect_map, the shim's): the same answers as through the module,
no stop for them, and a bad pointer still gets EFAULT (never a crash)."""
import socket
import subprocess

from conftest import PROGS, core_stats_text, run_native, run_view
from test_net import RecordingProxy, Target, closed_port

CLIENT = r"""
import ctypes, errno, socket, sys
port = int(sys.argv[1])
srv = socket.socket(); srv.bind(("127.0.0.1", port)); srv.listen(64)   # the host port, really
peers = []
for i in range(50):
    c = socket.create_connection(("127.0.0.1", port)); a, _ = srv.accept()
    peers.append((c.getpeername()[1], a.getpeername()[1] == c.getsockname()[1], a.getsockname()[1]))
    c.close(); a.close()
print("peers", sorted(set(peers)))
# not a mapped port, not loopback, not IPv4: as they are
for addr, fam in ((("127.0.0.1", 1), socket.AF_INET), (("::1", port), socket.AF_INET6)):
    s = socket.socket(fam)
    print(addr[0], s.connect_ex(addr) in (errno.ECONNREFUSED, errno.EADDRNOTAVAIL))
libc = ctypes.CDLL(None, use_errno=True)
s = socket.socket()
ctypes.set_errno(0)
print("bad pointer", libc.connect(s.fileno(), ctypes.c_void_p(16), 16), errno.errorcode[ctypes.get_errno()])
print("name", srv.getsockname()[1])
n = ctypes.c_uint32(2); buf = ctypes.create_string_buffer(16)   # room for the family only
print("short", libc.getsockname(srv.fileno(), buf, ctypes.byref(n)), n.value, buf.raw[:4].hex())
print("bad len", libc.getsockname(srv.fileno(), buf, ctypes.c_void_p(16)), errno.errorcode[ctypes.get_errno()])
print("bad fd", libc.connect(9999, b"\x02\x00" + port.to_bytes(2, "big") + bytes([127, 0, 0, 1]) + bytes(8), 16),
      errno.errorcode[ctypes.get_errno()])
"""


def test_port_map_connects_in_the_program(tmp_path):
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    host = free.getsockname()[1]
    free.close()
    script = tmp_path / "client.py"
    script.write_text(CLIENT)
    outs, stops = {}, {}
    for shim in ("1", "0"):
        log = tmp_path / f"log{shim}"
        r = run_view(["python3", str(script), "8000"], "--port-map", f"8000:{host}", "-vv", "--log", str(log),
                     env={"UMVIEW_SHIM": shim})
        assert r.returncode == 0, r.stderr
        outs[shim] = r.stdout.decode()
        stops[shim] = core_stats_text(log.read_text())["seccomp_stops"]
    assert outs["1"] == outs["0"]
    assert outs["1"].splitlines() == [
        "peers [(8000, True, 8000)]", "127.0.0.1 True", "::1 True",
        "bad pointer -1 EFAULT", "name 8000", "short 0 16 02000000", "bad len -1 EFAULT",
        "bad fd -1 EBADF"], outs["1"]
    # the 50 connects to the mapped port and the 50 getsocknames of the
    # accepted sockets: a stop each through the module, none in the program
    assert stops["1"] + 95 < stops["0"], stops
    native = run_native(["python3", "-c", "import ctypes, errno, socket; s = socket.socket(); "
                         "libc = ctypes.CDLL(None, use_errno=True); "
                         "print(libc.connect(s.fileno(), ctypes.c_void_p(16), 16), "
                         "errno.errorcode[ctypes.get_errno()])"])
    assert native.stdout == b"-1 EFAULT\n"


# ----------------------------------------------------------------------
# a SOCKS5 proxy: the handshake made by the program (Claims.socks5)

def _client(progs, tmp_path):
    """The tests' TCP client, linked with libc (the shim takes its connect)."""
    out = tmp_path / "net_client"
    subprocess.run(["gcc", "-O1", "-o", str(out), str(PROGS / "net_client_static.c")], check=True)
    return str(out)


def test_socks5_handshake_in_the_program(progs, tmp_path):
    """The same answers as the module's for every way a proxy can behave
    (it tunnels, refuses the target, hangs up mid-handshake, says nothing
    past proxy_timeout, is down), blocking and non-blocking, and
    getpeername shows the target; a blocking connect makes no stop."""
    client = _client(progs, tmp_path)
    holder, down = closed_port()
    outs, stops = {}, {}
    try:
        with Target() as target:
            for shim in ("1", "0"):
                res = []
                for behaviour in ("ok", "refuse", "close", "silent", "down"):
                    with RecordingProxy("socks5", None if behaviour in ("ok", "down") else behaviour) as proxy:
                        port = down if behaviour == "down" else proxy.port
                        opts = ["-p", f"net,socks5=127.0.0.1:{port},no_proxy=,proxy_timeout=1"]
                        for nb in ([], ["-n"]):
                            log = tmp_path / "log"
                            r = run_view([client, *nb, "127.0.0.1", str(target.port), "GET / HTTP/1.0\n\n"],
                                         *opts, "-vv", "--log", str(log), env={"UMVIEW_SHIM": shim})
                            res.append((behaviour, nb, r.stdout))
                            if behaviour == "ok" and not nb:
                                stops[shim] = core_stats_text(log.read_text())["seccomp_stops"]
                                assert proxy.requests == [("127.0.0.1", target.port)], proxy.requests
                outs[shim] = res
    finally:
        holder.close()
    assert outs["1"] == outs["0"]
    got = {(b, tuple(nb)): out for b, nb, out in outs["1"]}
    for nb in ((), ("-n",)):
        assert got[("ok", nb)].startswith(f"connect OK\npeer 127.0.0.1 {target.port}\n".encode())
        assert got[("ok", nb)].endswith(b"hello from target\n"), got[("ok", nb)]
        assert got[("refuse", nb)] == got[("close", nb)] == got[("down", nb)] == b"connect ECONNREFUSED\n"
        assert got[("silent", nb)] == b"connect ETIMEDOUT\n"
    # the blocking connect and its getpeername stop through the module only
    assert stops["1"] + 2 <= stops["0"], stops
