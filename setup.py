# Only here to declare the native parts; everything else is in pyproject.toml.
#  - umview_py._native: the C core, built by cffi;
#  - umview_py._umvshim: not a Python module but the library `umview -0`
#    preloads into programs to answer their stat calls in-process
#    (native/umvshim.c); it is never imported.
from setuptools import Extension, setup

shim = Extension(
    "umview_py._umvshim",
    sources=["native/umvshim.c"],
    include_dirs=["native"],
    depends=["native/umvshm.h", "native/umvcore.h"],
    extra_compile_args=["-O2", "-Wall", "-Wextra", "-fvisibility=hidden"],
)

setup(cffi_modules=["native/build_core.py:ffibuilder"], ext_modules=[shim])
