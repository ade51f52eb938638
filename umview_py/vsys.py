"""The client side of the virtual syscall: how in-view commands and scripts
talk to the hypervisor that traces them.

The request is JSON; the number (0x7500) is one no kernel has, so outside a
view the kernel answers ENOSYS and we know we are not inside one."""
from __future__ import annotations

import errno
import json
import os

from ._native import ffi, lib
from .errors import UmviewError

NR_VSYS = lib.UMV_NR_VSYS


class NotInView(UmviewError):
    def __init__(self):
        super().__init__("not inside a view", status=1)


def call(op: str, **fields) -> dict:
    req = json.dumps({"op": op, **fields}).encode()
    out = ffi.new("char[]", 1 << 20)
    n = lib.umv_vsys(req, len(req), out, len(out))
    if n < 0:
        e = -n
        if e == errno.ENOSYS:
            raise NotInView()
        raise UmviewError(f"{op}: {os.strerror(e)}", status=1)
    answer = json.loads(ffi.buffer(out, n)[:])
    if "error" in answer:
        raise UmviewError(answer["error"], status=1)
    return answer


def inside_view() -> bool:
    try:
        call("ping")
    except NotInView:
        return False
    return True
