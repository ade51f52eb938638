"""Scripting views from Python.

    import trio, umview_py

    async def main():
        async with umview_py.View(name="build", modules=["misc"]) as view:
            await view.insmod("misc", hostname="builder")   # (already loaded: error)
            result = await view.run(["uname", "-n"], capture_output=True)
            async with view.nest(modules=[("misc", {"release": "1.0"})]) as inner:
                await inner.run(["uname", "-rn"])
    trio.run(main)

Outside any view the script's process becomes the hypervisor (one per
process; every View of the script shares it).  Inside a view (the script
itself runs under `umview`) a View asks the running hypervisor for a child
view of the script's own, and its commands join that view before they exec.

Leaving the `async with` block kills what is left of the view's processes
(an exception inside the block does the same); cancelling a `run` kills the
process tree it started.
"""
from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field

import trio

from . import registry, vsys
from .errors import UmviewError
from .module import Module

__all__ = ["View", "Result", "run"]


@dataclass
class Result:
    """What `View.run` returns: like subprocess.CompletedProcess, plus the
    view's per-module statistics {(module, syscall): (calls, errors, seconds)}."""

    args: list
    returncode: int
    stdout: bytes | None = None
    stderr: bytes | None = None
    stats: dict = field(default_factory=dict)

    def check_returncode(self):
        if self.returncode:
            raise subprocess.CalledProcessError(self.returncode, self.args, self.stdout, self.stderr)


def _exit_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)  # as subprocess reports it
    return 255


def _module_specs(modules):
    """Accepts names, (name, {options}), "name,k=v" strings and Module instances."""
    out = []
    for m in modules:
        if isinstance(m, Module):
            out.append(m)
        elif isinstance(m, str):
            out.append(registry.parse_spec(m))
        else:
            name, opts = m
            out.append((name, dict(opts)))
    return out


class _SystemNursery:
    """Where the hypervisor of a script runs its tasks: trio's system nursery,
    so that no user nursery has to outlive every View."""

    @staticmethod
    def start_soon(fn, *args):
        trio.lowlevel.spawn_system_task(fn, *args)


class _Local:
    """This process is the hypervisor (one per process, shared by its Views)."""

    hv = None
    users = 0

    @classmethod
    async def acquire(cls):
        from ._core.hypervisor import Hypervisor

        if cls.hv is None:
            hv = Hypervisor()
            await hv.start(_SystemNursery())
            cls.hv = hv
        cls.users += 1
        return cls.hv

    @classmethod
    async def release(cls):
        cls.users -= 1
        if cls.users == 0 and cls.hv is not None:
            hv = cls.hv
            cls.hv = None
            hv.kill_all()
            with trio.move_on_after(30):  # a guard: SIGKILLed processes exit at once
                await hv.wait_all()
            hv.stop_pump()
            hv.shutdown()


class View:
    def __init__(self, name: str | None = None, modules=(), *, no_nesting: bool = False,
                 _parent: "View | None" = None):
        self.name = name
        self.modules = _module_specs(modules)
        self.no_nesting = no_nesting
        self._parent = _parent
        self._hv = None
        self._state = None      # local: the hypervisor's ViewState
        self._remote_id = None  # remote: the view id in the running hypervisor

    # -- life -------------------------------------------------------------
    async def __aenter__(self):
        remote = self._parent._remote_id is not None if self._parent else vsys.inside_view()
        if remote:
            fields = {"name": self.name}
            if self._parent:
                fields["view"] = self._parent._remote_id
            answer = vsys.call("newview", **fields)
            self._remote_id = answer["id"]
            self.name = answer["view"]
            try:
                for spec in self.modules:
                    if isinstance(spec, Module):
                        raise UmviewError("module instances can be passed only when the script is "
                                          "the hypervisor (outside any view); pass a name")
                    await self.insmod(spec[0], **spec[1])
            except BaseException:
                vsys.call("dropview", view=self._remote_id)
                raise
            return self
        self._hv = await _Local.acquire()
        try:
            parent = self._parent._state if self._parent else None
            self._state = self._hv.new_view(self.name, parent=parent)
            self._state.no_nesting = self.no_nesting
            self.name = self._state.name
            for spec in self.modules:
                if isinstance(spec, Module):
                    self._hv.insmod(self._state, spec)
                else:
                    await self.insmod(spec[0], **spec[1])
        except BaseException:
            await _Local.release()
            raise
        return self

    async def __aexit__(self, *exc):
        if self._remote_id is not None:
            vsys.call("dropview", view=self._remote_id)
            return False
        with trio.CancelScope(shield=True):
            self._hv.kill_view(self._state)
            with trio.move_on_after(30):  # a guard: SIGKILLed processes exit at once
                await self._hv.view_idle(self._state)
            self._hv.retire(self._state)
            await _Local.release()
        return False

    def nest(self, name: str | None = None, modules=(), *, no_nesting: bool = False) -> "View":
        """A child view: it sees this view's modules below its own."""
        return View(name, modules, no_nesting=no_nesting, _parent=self)

    # -- modules ----------------------------------------------------------
    async def insmod(self, module, **options):
        if isinstance(module, Module):
            if self._state is None:
                raise UmviewError("module instances can be passed only when the script is the hypervisor")
            self._hv.insmod(self._state, module)
            return
        if self._remote_id is not None:
            vsys.call("insmod", view=self._remote_id, module=module,
                      options={k: str(v) for k, v in options.items()})
            return
        self._hv.insmod(self._state, registry.instantiate(module, {k: str(v) for k, v in options.items()}))

    async def rmmod(self, name: str):
        if self._remote_id is not None:
            vsys.call("rmmod", view=self._remote_id, module=name)
        else:
            self._hv.rmmod(self._state, name)

    async def lsmod(self) -> list[str]:
        """Names of the modules serving this view, in the order they are asked."""
        if self._remote_id is not None:
            answer = vsys.call("lsmod", view=self._remote_id)
            return [m["name"] for v in answer["views"] for m in reversed(v["modules"])]
        return [m.name for m in self._state.chain()]

    def stats(self) -> dict:
        if self._remote_id is not None:
            rows = vsys.call("stats", view=self._remote_id)["stats"]
            return {(m, sc): (c, e, t) for m, sc, c, e, t in rows}
        return {k: (s.calls, s.errors, s.seconds) for k, s in self._state.stats.items()}

    # -- running ----------------------------------------------------------
    async def run(self, argv, *, cwd=None, env=None, capture_output=False, input=None,
                  check=False) -> Result:
        argv = [os.fspath(a) for a in argv]
        if self._remote_id is not None:
            result = await self._run_remote(argv, cwd, env, capture_output, input)
        else:
            result = await self._run_local(argv, cwd, env, capture_output, input)
        result.stats = self.stats()
        if check:
            result.check_returncode()
        return result

    async def _run_remote(self, argv, cwd, env, capture_output, input):
        view_id = self._remote_id

        def join():  # in the child, after fork, before exec: it is a tracee already
            vsys.call("join", view=view_id)

        proc = await trio.run_process(argv, cwd=cwd, env=env, stdin=input, check=False,
                                      preexec_fn=join, capture_stdout=capture_output,
                                      capture_stderr=capture_output)
        return Result(argv, proc.returncode, proc.stdout if capture_output else None,
                      proc.stderr if capture_output else None)

    async def _run_local(self, argv, cwd, env, capture_output, input):
        hv = self._hv
        ours = []  # fds to close in this process after the spawn
        stdio = [-1, -1, -1]
        readers = {}
        writer = None
        try:
            if input is not None:
                r, w = os.pipe()
                stdio[0] = r
                ours.append(r)
                writer = trio.lowlevel.FdStream(w)
            if capture_output:
                for i in (1, 2):
                    r, w = os.pipe()
                    stdio[i] = w
                    ours.append(w)
                    readers[i] = trio.lowlevel.FdStream(r)
            pid = await hv.spawn(self._state, argv, env=env, cwd=cwd, stdio=stdio)
        finally:
            for fd in ours:
                os.close(fd)
        out = {1: bytearray(), 2: bytearray()}

        async def drain(i):
            async with readers[i]:
                while chunk := await readers[i].receive_some(65536):
                    out[i] += chunk

        async def feed():
            async with writer:
                await writer.send_all(input)

        try:
            async with trio.open_nursery() as nursery:
                for i in readers:
                    nursery.start_soon(drain, i)
                if writer is not None:
                    nursery.start_soon(feed)
                status = await hv.wait(pid)
        except BaseException:
            with trio.CancelScope(shield=True):
                await hv.kill_tree(pid)
            raise
        return Result(argv, _exit_code(status), bytes(out[1]) if capture_output else None,
                      bytes(out[2]) if capture_output else None)


def run(argv, modules=(), *, name=None, **kwargs) -> Result:
    """Blocking helper: run argv in a new view with modules and return a Result."""

    async def main():
        async with View(name, modules) as view:
            return await view.run(argv, **kwargs)

    return trio.run(main)
