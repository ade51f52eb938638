"""proxy_dns: names resolved through the proxy, for python, curl, static
binaries (glibc's resolver, and queries made by hand as musl makes them:
unconnected UDP, and TCP) and Go.

Every program here aims at the name servers of /etc/resolv.conf, which are
not loopback addresses: so each runs in a fresh network namespace holding
only lo (test_net.netns_run), where a query that the view fails to answer
itself finds no route, and a name it fails to send through the proxy
reaches nobody.  The proxies of the netns driver know two names
(test_net.NETNS_NAMES); nothing else in the namespace does."""
import ipaddress
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from test_net import FAR, GUARD, netns_run  # noqa: E402

PLACEHOLDERS = ipaddress.ip_network("240.0.0.0/4")
SOCKS = ["--socks5", "127.0.0.1:{socks5}", "--proxy-dns", "yes"]
HTTP = ["--http-proxy", "127.0.0.1:{http}", "--proxy-dns", "yes"]
GET = "GET / HTTP/1.0\n\n"

PY_CLIENT = r"""
import errno, ipaddress, socket, urllib.request
try:
    infos = socket.getaddrinfo("www.umview.test", 80, proto=socket.IPPROTO_TCP)
except socket.gaierror as e:
    print("gaierror", e.errno)
    raise SystemExit(0)
addrs = sorted({i[4][0] for i in infos})
print("families", sorted({i[0].name for i in infos}))
print("placeholder", len(addrs) == 1 and ipaddress.ip_address(addrs[0]) in ipaddress.ip_network("240.0.0.0/4"))
print("same again", socket.gethostbyname("WWW.Umview.Test") == addrs[0])
print("other name", socket.gethostbyname("near.umview.test") != addrs[0])
print("reverse", socket.gethostbyaddr(addrs[0])[0])
print("page", urllib.request.urlopen("http://www.umview.test/", timeout=20).read().decode().strip())
print("near", urllib.request.urlopen("http://near.umview.test:80/", timeout=20).read().decode().strip())
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    u.sendto(b"x", (addrs[0], 80))
    print("udp sent")
except OSError as e:
    print("udp", errno.errorcode[e.errno])
s = socket.create_connection(("www.umview.test", 80), timeout=20)
print("peer", s.getpeername()[0] == addrs[0])
"""


def test_netns_proxy_dns_python_curl_static(progs):
    rs = progs["net_resolve_static"]
    py = [sys.executable, "-c", PY_CLIENT]
    curl = ["curl", "-sS", "--max-time", "20", "http://www.umview.test/"]
    rep = netns_run({"runs": [
        {"cmd": py, "umview": None},                                   # 0 natively: no DNS at all
        {"cmd": py, "umview": SOCKS},                                  # 1
        {"cmd": py, "umview": HTTP},                                   # 2
        {"cmd": curl, "umview": SOCKS},                                # 3
        {"cmd": [rs, "www.umview.test", "80", GET], "umview": SOCKS},  # 4 glibc getaddrinfo, static
        {"cmd": [rs, "-n", "www.umview.test", "80", GET], "umview": HTTP},   # 5 non-blocking connect
        {"cmd": [rs, "-u", "www.umview.test"], "umview": SOCKS},      # 6 musl's way: sendto/recvfrom
        {"cmd": [rs, "-t", "www.umview.test"], "umview": SOCKS},      # 7 DNS over TCP
        {"cmd": [rs, "-m", "www.umview.test"], "umview": SOCKS},      # 8 sendmmsg/recvmsg
        {"cmd": [rs, "www.umview.test", "80", GET], "umview": SOCKS + ["--net", "deny"]},   # 9
        {"cmd": [rs, "nosuch.umview.test", "80"], "umview": SOCKS},  # 10 the proxy knows no such name
        {"cmd": [rs, "-u", "www.umview.test"], "umview": None},       # 11 natively, by hand
    ]})
    runs = rep["runs"]
    native = runs[0]["stdout"].split()
    assert native[0] == "gaierror", runs[0]
    for i in (1, 2):
        lines = runs[i]["stdout"].splitlines()
        assert lines == ["families ['AF_INET']", "placeholder True", "same again True", "other name True",
                         "reverse www.umview.test", f"page hello from {FAR}", "near hello from 127.0.0.1",
                         "udp ENETUNREACH", "peer True"], runs[i]
    if shutil.which("curl"):
        assert runs[3]["stdout"] == f"hello from {FAR}\n", runs[3]
    for i in (4, 5, 9):
        out = runs[i]["stdout"]
        first = out.split("\n", 1)[0].split()
        assert first[0] == "resolved" and ipaddress.ip_address(first[1]) in PLACEHOLDERS, runs[i]
        assert out.endswith(f"hello from {FAR}\n"), runs[i]
        assert f"peer {first[1]} 80\n" in out, runs[i]
    assert "connect EINPROGRESS\nconnect OK\n" in runs[5]["stdout"], runs[5]
    for i in (6, 8):
        lines = runs[i]["stdout"].splitlines()
        assert len(lines) == 2 and lines[1] == "source OK", runs[i]
        assert ipaddress.ip_address(lines[0].split()[1]) in PLACEHOLDERS, runs[i]
    assert runs[7]["stdout"].startswith("resolved 240."), runs[7]
    assert runs[10]["stdout"].splitlines()[1:] == ["connect EHOSTUNREACH"], runs[10]
    assert runs[11]["stdout"] == "sendto ENETUNREACH\n", runs[11]
    # the proxies were asked for names, never for the placeholders
    socks = [tuple(r) for r in rep["socks5"]]
    http = [tuple(r) for r in rep["http"]]
    n_curl = 1 if shutil.which("curl") else 0
    assert socks.count(("www.umview.test", 80)) == 2 + n_curl + 2, socks
    assert socks.count(("near.umview.test", 80)) == 1 and ("nosuch.umview.test", 80) in socks, socks
    assert sorted(http) == sorted([("www.umview.test", 80)] * 3 + [("near.umview.test", 80)]), http
    assert not any(ipaddress.ip_address(h) in PLACEHOLDERS for h, _ in socks + http
                   if h.replace(".", "").isdigit())


GO_CLIENT = r"""
package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	addrs, err := net.LookupHost(os.Args[1])
	fmt.Println("lookup", addrs, err)
	c := &http.Client{Timeout: 20 * time.Second}
	r, err := c.Get("http://" + os.Args[1] + "/")
	if err != nil {
		fmt.Println("get", err)
		os.Exit(1)
	}
	b, _ := io.ReadAll(r.Body)
	fmt.Print(string(b))
}
"""


def _go_build(tmp_path):
    """A static Go client (CGO_ENABLED=0: Go's own resolver, its own
    non-blocking connects with epoll), or None without a Go toolchain."""
    go = shutil.which("go")
    if go is None:
        return None
    (tmp_path / "main.go").write_text(GO_CLIENT)
    env = dict(os.environ, CGO_ENABLED="0", GOCACHE=str(tmp_path / "cache"), GOPATH=str(tmp_path / "gopath"),
               GO111MODULE="off", HOME=str(tmp_path))
    subprocess.run([go, "build", "-o", str(tmp_path / "client"), str(tmp_path / "main.go")], check=True,
                   env=env, capture_output=True, timeout=GUARD * 3)
    return str(tmp_path / "client")


def test_netns_proxy_dns_go(tmp_path):
    """Go's resolver (connected UDP sockets, read()) and Go's dialer
    (non-blocking connect, epoll, SO_ERROR, getpeername), statically linked:
    what proxychains cannot serve."""
    import pytest
    client = _go_build(tmp_path)
    if client is None:
        pytest.skip("no Go toolchain (apt-get install golang-go)")
    rep = netns_run({"runs": [
        {"cmd": [client, "www.umview.test"], "umview": SOCKS},
        {"cmd": [client, "www.umview.test"], "umview": HTTP},
        {"cmd": [client, "www.umview.test"], "umview": None},
    ]})
    for run in rep["runs"][:2]:
        lines = run["stdout"].splitlines()
        assert lines[0].startswith("lookup [240.") and lines[0].endswith("] <nil>"), run
        assert lines[1:] == [f"hello from {FAR}"], run
    assert rep["runs"][2]["returncode"] == 1 and "lookup [] " in rep["runs"][2]["stdout"], rep["runs"][2]
    assert [tuple(r) for r in rep["socks5"]] == [("www.umview.test", 80)]
    assert [tuple(r) for r in rep["http"]] == [("www.umview.test", 80)]
