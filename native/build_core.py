"""cffi build script for the C core (API mode): `pip install .` runs it."""
import os
import re

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))


def _cdef():
    with open(os.path.join(HERE, "umvcore.h")) as f:
        text = f.read()
    return re.search(r"/\* CDEF-BEGIN \*/(.*)/\* CDEF-END \*/", text, re.S).group(1)


ffibuilder = FFI()
ffibuilder.cdef(_cdef() + """
extern "Python+C" int umv_py_syscall(umv_event *ev, int64_t *value);
""")
ffibuilder.set_source(
    "umview_py._native",
    '#include "umvcore.h"',
    sources=[os.path.relpath(os.path.join(HERE, "umvcore.c"))],
    depends=[os.path.relpath(os.path.join(HERE, h)) for h in ("umvcore.h", "umvshm.h")],
    include_dirs=[os.path.relpath(HERE)],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    libraries=["pthread"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
