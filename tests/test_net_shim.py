"""A port map's connects and getsocknames made by the program itself
(Claims.connect_map, the shim's): the same answers as through the module,
no stop for them, and a bad pointer still gets EFAULT (never a crash)."""
import re
import socket

from conftest import run_native, run_view

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


def _stats(text):
    return {k: int(v) for k, v in re.findall(r"'(\w+)': (\d+)", text.split("core statistics:")[-1])}


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
        stops[shim] = _stats(log.read_text())["seccomp_stops"]
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
