# Only here to declare the cffi-built C core; everything else is in pyproject.toml.
from setuptools import setup

setup(cffi_modules=["native/build_core.py:ffibuilder"])
