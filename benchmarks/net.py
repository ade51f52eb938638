"""The net module's speed: sequential loopback HTTP requests from a Python
client (http.client, one connection per request) to a local http.server.

Modes (each round runs every mode once, in a freshly shuffled order; the
tables give medians over rounds and ratios taken inside each round):

  native        client and server natively
  port-map      the client in `umview --port-map 8000:H`, connecting to 8000
  port-map-srv  the server too runs in a view with `--port-map 8000:H`
                (bind remapped, getsockname shown as 8000), the client natively on H
  socks5        the client in `umview --socks5 127.0.0.1:P --no-proxy ""`
  proxychains   the client under `proxychains4 -q -f CONF` (same proxy)
  socks5-direct the client natively, speaking SOCKS5 itself (what the proxy costs alone)

The time is taken inside the client (time.perf_counter around the requests),
so neither umview's nor proxychains' start-up is in it; each mode's whole
command time is reported too.  The SOCKS5 proxy is microsocks when it is
installed (a small C server: the proxy's own cost does not drown what is
measured), else a threaded Python proxy of this file (`--proxy python`).

    python3 benchmarks/net.py [--requests 2000] [--rounds 5] [--proxy auto|microsocks|python]
                              [--modes a,b,...] [--wait-idle S] [--out benchmarks/results/net.md]
"""
from __future__ import annotations

import argparse
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (RESULTS, fmt_cmdline, loadavg, machine_lines, median,  # noqa: E402
                     resolve_program, umview_command, wait_for_idle)

GUEST_PORT = 8000

SERVER = r"""
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    def do_GET(self):
        body = b"hello\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
port = int(sys.argv[1])
srv = http.server.HTTPServer(("127.0.0.1", port), H)
print(srv.server_address[1], srv.socket.getsockname()[1], flush=True)
srv.serve_forever()
"""

CLIENT = r"""
import http.client, socket, struct, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = sys.argv[4] if len(sys.argv) > 4 else None

class SocksConnection(http.client.HTTPConnection):
    # SOCKS5 done by the client itself: the proxy's own cost, no interception
    def connect(self):
        ph, pp = socks.split(":")
        s = socket.create_connection((ph, int(pp)))
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        s.sendall(b"\x05\x01\x00\x01" + socket.inet_aton(self.host) + struct.pack("!H", self.port))
        r = b""
        while len(r) < 10:
            r += s.recv(10 - len(r))
        assert r[1] == 0, r
        self.sock = s

cls = SocksConnection if socks else http.client.HTTPConnection
t0 = time.perf_counter()
for i in range(n):
    c = cls(host, port)
    c.request("GET", "/")
    body = c.getresponse().read()
    c.close()
    assert body == b"hello\n", body
print(time.perf_counter() - t0)
"""

# A threaded SOCKS5 proxy (no auth, IPv4 CONNECT), for machines without microsocks.
PYPROXY = r"""
import select, socket, struct, sys, threading
def relay(a, b):
    socks = [a, b]
    try:
        while True:
            r, _, _ = select.select(socks, [], [])
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close(); b.close()
def serve(c):
    try:
        ver, n = c.recv(2)
        c.recv(n)
        c.sendall(b"\x05\x00")
        hdr = c.recv(4)
        if hdr[3] == 1:
            host = socket.inet_ntoa(c.recv(4))
        else:
            host = c.recv(c.recv(1)[0]).decode()
        port = struct.unpack("!H", c.recv(2))[0]
        up = socket.create_connection((host, port))
        c.sendall(b"\x05\x00\x00\x01" + bytes(6))
    except OSError:
        c.close()
        return
    relay(c, up)
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(128)
print(ls.getsockname()[1], flush=True)
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""

MODES = ["native", "port-map", "port-map-srv", "socks5", "proxychains", "socks5-direct"]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port: int, proc: subprocess.Popen, limit: float = 30.0) -> None:
    """Until something accepts connections on 127.0.0.1:port (microsocks
    says nothing when it is ready)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the proxy exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on 127.0.0.1:{port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--proxy", choices=["auto", "microsocks", "python"], default="auto")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--wait-idle", type=float, default=60.0)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--out", default=str(RESULTS / "net.md"))
    args = ap.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in MODES:
            ap.error(f"unknown mode {m!r} (known: {', '.join(MODES)})")
    py = resolve_program("python3") or sys.executable
    umview = umview_command()
    pc = shutil.which("proxychains4")
    if "proxychains" in modes and not pc:
        sys.exit("proxychains4 is not installed (apt-get install -y proxychains4), or leave out "
                 "--modes proxychains")
    microsocks = shutil.which("microsocks")
    kind = args.proxy if args.proxy != "auto" else ("microsocks" if microsocks else "python")
    if kind == "microsocks" and not microsocks:
        sys.exit("microsocks is not installed (apt-get install -y microsocks)")
    rng = random.Random(args.seed)

    tmp = Path(tempfile.mkdtemp(prefix="umview-netbench-"))
    (tmp / "server.py").write_text(SERVER)
    (tmp / "client.py").write_text(CLIENT)
    (tmp / "proxy.py").write_text(PYPROXY)
    procs = []
    try:
        server = subprocess.Popen([py, str(tmp / "server.py"), "0"], stdout=subprocess.PIPE)
        procs.append(server)
        host_port = int(server.stdout.readline().split()[0])
        if kind == "microsocks":
            proxy_port = free_port()
            proxy = subprocess.Popen([microsocks, "-i", "127.0.0.1", "-p", str(proxy_port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proxy)
            wait_listening(proxy_port, proxy)
        else:
            proxy = subprocess.Popen([py, str(tmp / "proxy.py")], stdout=subprocess.PIPE)
            procs.append(proxy)
            proxy_port = int(proxy.stdout.readline())
        (tmp / "proxychains.conf").write_text(textwrap.dedent(f"""\
            strict_chain
            quiet_mode
            tcp_read_time_out 15000
            tcp_connect_time_out 8000
            [ProxyList]
            socks5 127.0.0.1 {proxy_port}
            """))
        # the server of port-map-srv: in a view, binding 8000 that is really srv_port
        srv_port = free_port()
        if "port-map-srv" in modes:
            vserver = subprocess.Popen(umview + ["--port-map", f"{GUEST_PORT}:{srv_port}", "--", py,
                                                 str(tmp / "server.py"), str(GUEST_PORT)],
                                       stdout=subprocess.PIPE)
            procs.append(vserver)
            shown, really = vserver.stdout.readline().split()
            assert int(shown) == GUEST_PORT and int(really) == GUEST_PORT, (shown, really)

        n = str(args.requests)
        client = [py, str(tmp / "client.py")]
        commands = {
            "native": client + ["127.0.0.1", str(host_port), n],
            "port-map": umview + ["--port-map", f"{GUEST_PORT}:{host_port}", "--"] + client
            + ["127.0.0.1", str(GUEST_PORT), n],
            "port-map-srv": client + ["127.0.0.1", str(srv_port), n],
            "socks5": umview + ["--socks5", f"127.0.0.1:{proxy_port}", "--no-proxy", "", "--"] + client
            + ["127.0.0.1", str(host_port), n],
            "proxychains": [pc or "proxychains4", "-q", "-f", str(tmp / "proxychains.conf")] + client
            + ["127.0.0.1", str(host_port), n],
            "socks5-direct": client + ["127.0.0.1", str(host_port), n, f"127.0.0.1:{proxy_port}"],
        }
        # warm-up (page cache, the proxy's first threads), untimed
        for m in modes:
            warm = list(commands[m])
            warm[warm.index(n)] = "20"
            subprocess.run(warm, check=True, stdout=subprocess.DEVNULL)

        inside: dict[str, list[float]] = {m: [] for m in modes}
        whole: dict[str, list[float]] = {m: [] for m in modes}
        busy_seen = []
        load0 = loadavg()
        for r in range(args.rounds):
            if args.wait_idle > 0:
                busy, _ = wait_for_idle(args.wait_idle)
                busy_seen.append(busy)
            order = list(modes)
            rng.shuffle(order)
            for m in order:
                t0 = time.perf_counter()
                out = subprocess.run(commands[m], check=True, stdout=subprocess.PIPE)
                whole[m].append(time.perf_counter() - t0)
                inside[m].append(float(out.stdout.split()[-1]))
            print(f"round {r + 1}: " + ", ".join(
                f"{m} {inside[m][-1] / args.requests * 1e6:.0f} µs" for m in modes), flush=True)
        load1 = loadavg()
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    def ratio(a, b):
        if a not in inside or b not in inside:
            return None
        return median([x / y for x, y in zip(inside[a], inside[b])])

    lines = [
        "# net: sequential loopback HTTP requests",
        "",
        f"`{fmt_cmdline()}`",
        "",
        *machine_lines(umview),
        f"- requests per run: {args.requests} (http.client, one connection each, HTTP/1.0) to an "
        f"http.server on 127.0.0.1; rounds: {args.rounds}, modes interleaved in a shuffled order",
        f"- SOCKS5 proxy: {kind}" + (f" ({microsocks})" if kind == "microsocks" else " (threaded Python, "
                                     "in benchmarks/net.py)") + f"; proxychains4: {pc or 'not installed'}",
        f"- load average at start / end: {load0} / {load1}; busy fraction before each round: "
        + ", ".join(f"{b:.0%}" for b in busy_seen),
        "",
        "| mode | µs per request (median) | whole command, s (median) | ratio to native (median of rounds) |",
        "|---|---|---|---|",
    ]
    for m in modes:
        rt = ratio(m, "native")
        lines.append(f"| {m} | {median(inside[m]) / args.requests * 1e6:.0f} | {median(whole[m]):.2f} | "
                     + (f"{rt:.2f}x" if rt is not None else "–") + " |")
    extra = []
    for a, b, label in (("port-map", "native", "port-map / native"),
                        ("port-map-srv", "native", "port-map-srv / native"),
                        ("socks5", "proxychains", "socks5 / proxychains4"),
                        ("socks5", "socks5-direct", "socks5 / the client speaking SOCKS5 itself"),
                        ("proxychains", "socks5-direct", "proxychains4 / the client speaking SOCKS5 itself")):
        rt = ratio(a, b)
        if rt is not None:
            extra.append(f"- {label}: {rt:.2f}x (median of the per-round ratios)")
    lines += [""] + extra + [""]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
