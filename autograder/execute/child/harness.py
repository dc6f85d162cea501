"""The child side: run a student's notebook cell by cell, then answer the parent's calls.

Runs inside the sandbox (see jail.py), after the student's code can already have changed anything in this
process. Nothing here is trusted by the parent: whatever this file sends back is plain data that the parent
validates and compares itself. It exists to execute honestly for honest students:

* every code cell runs through IPython's InteractiveShell (magics work), in order, continuing past errors;
  a cell that runs past its time limit is interrupted and the next cell runs;
* shell escapes (``!cmd``), ``%pip``/``%conda`` and shell cell magics are skipped; ``google.colab`` is a stub;
* Python, numpy and torch are seeded once with the course seed before the first cell;
* after the cells, the last *function* bound to each graded name is the one that is graded (so
  ``rmse = rmse(y, p)`` in a later cell does not hide the student's function);
* calls and probes arrive as JSON frames on fd 3; answers leave on fd 4.
"""
import contextlib
import io
import os
import signal
import sys
import time
import traceback

sys.path.insert(0, "/grader")
sys.path.append("/grader/stubs")
import protocol  # noqa: E402  (copied next to this file)

IN_FD, OUT_FD = 3, 4


class GraderTimeout(BaseException):
    """Raised by the alarm; a BaseException so that ``except Exception`` in student code does not eat it."""


def _on_alarm(signum, frame):
    raise GraderTimeout("time limit reached")


class HelperTimeout(BaseException):
    """The student's own helper, asked only for the shape of its result, took longer than OWN_HELPER_S."""


def _on_helper_alarm(signum, frame):
    raise HelperTimeout()


OWN_HELPER_S = 2.0


class CappedText(io.TextIOBase):
    """A text stream that keeps the first ``cap`` characters and counts the rest."""

    def __init__(self, cap):
        self.cap, self.parts, self.size, self.dropped = cap, [], 0, 0

    def writable(self):
        return True

    def write(self, s):
        s = str(s)
        room = self.cap - self.size
        if room > 0:
            self.parts.append(s[:room])
            self.size += min(len(s), room)
        self.dropped += max(0, len(s) - max(room, 0))
        return len(s)

    def getvalue(self):
        text = "".join(self.parts)
        return text + (f"\n... [{self.dropped} more characters not kept]" if self.dropped else "")


def _format_error(exc):
    tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
    # drop the harness's own frames: the student needs their cell's lines, not ours
    keep = [line for line in tb if "/grader/" not in line and "IPython/core" not in line]
    text = "".join(keep)
    return {"ename": type(exc).__name__, "evalue": str(exc)[:2000], "traceback": text[-8000:]}


class Harness:
    def __init__(self, setup):
        self.setup = setup
        self.cap = int(setup["output_bytes"])
        self.graded = {}
        self.shell = None
        self.kinds = dict(setup["kinds"])   # graded name -> function | class | module
        self.probes = _load_probes(setup.get("probes") or "")

    # -- notebook ------------------------------------------------------------------------------------------
    def start_shell(self):
        from IPython.core.interactiveshell import InteractiveShell

        shell = InteractiveShell.instance(colors="nocolor")
        shell.system = lambda *a, **k: None          # `!cmd` lines do nothing
        shell.getoutput = lambda *a, **k: []         # `x = !cmd` gives an empty list
        noop = lambda *a, **k: None  # noqa: E731
        for name in ("pip", "conda", "mamba", "uv", "sx", "system"):
            shell.register_magic_function(noop, "line", name)
        for name in ("bash", "sh", "script", "system", "html", "javascript", "js", "perl", "ruby", "sx"):
            shell.register_magic_function(noop, "cell", name)
        shell.register_magic_function(self._matplotlib_magic, "line", "matplotlib")
        self.shell = shell

    @staticmethod
    def _matplotlib_magic(line=""):
        import matplotlib

        matplotlib.use("Agg")

    def seed(self):
        import random

        import numpy as np

        random.seed(self.setup["seed"])
        np.random.seed(self.setup["seed"])
        try:
            import torch
        except ImportError:
            return
        torch.manual_seed(self.setup["seed"])
        torch.set_num_threads(int(self.setup["threads"]))

    def run_cells(self):
        deadline = time.monotonic() + float(self.setup["notebook_timeout_s"])
        skip = set(self.setup.get("skip", []))
        for index, source in enumerate(self.setup["cells"]):
            if index in skip:
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                protocol.send(OUT_FD, {"type": "cell", "index": index, "status": "skipped",
                                       "duration_s": 0.0, "output": "", "error": None})
                continue
            protocol.send(OUT_FD, {"type": "cell_start", "index": index})
            record = self.run_cell(index, source, min(float(self.setup["cell_timeout_s"]), remaining))
            _end_strays()
            self.remember_functions()
            protocol.send(OUT_FD, record)

    def run_cell(self, index, source, timeout):
        out = CappedText(self.cap)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        start = time.monotonic()
        status, error = "ok", None
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(timeout, 0.01))
        try:
            result = self.shell.run_cell(source, store_history=True, silent=False)
            exc = result.error_in_exec or result.error_before_exec
            if exc is not None:
                status, error = ("timeout" if isinstance(exc, GraderTimeout) else "error"), _format_error(exc)
        except GraderTimeout as exc:
            status, error = "timeout", _format_error(exc)
        except BaseException as exc:  # SystemExit, KeyboardInterrupt... from the student's cell
            status, error = "error", _format_error(exc)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = saved
        return {"type": "cell", "index": index, "status": status, "error": error,
                "duration_s": round(time.monotonic() - start, 4), "output": out.getvalue()}

    def remember_functions(self):
        """After each cell: the last value of each graded name's kind (a function; a class, or a function
        that builds one; a torch.nn.Module) bound to it. A later ``rmse = rmse(y, p)`` or
        ``loss = nn.CrossEntropyLoss()`` does not replace it."""
        ns = self.shell.user_ns
        for name, kind in self.kinds.items():
            value = ns.get(name)
            if kind == "module":
                ok = _is_module(value)
            elif kind == "class":
                ok = isinstance(value, type) or _is_function(value)
            else:
                ok = _is_function(value)
            if ok:
                self.graded[name] = value

    def rebound(self):
        """Graded names whose binding at the end of the notebook is no longer the graded function."""
        ns = self.shell.user_ns
        return sorted(name for name, fn in self.graded.items() if ns.get(name) is not fn)

    @contextlib.contextmanager
    def patched(self, replacements):
        """The notebook's globals with ``replacements`` in place for one call, as they were afterwards.
        A graded name that a later cell rebound to a value that cannot be called (``rmse = rmse(y, p)``) is
        its function again while a call runs; one rebound to another callable (``loss =
        nn.CrossEntropyLoss()``) stays, because the student's own later code uses it."""
        ns = self.shell.user_ns
        mapping = {name: fn for name, fn in self.graded.items() if not callable(ns.get(name))}
        mapping.update(replacements)
        missing = object()
        saved = {name: ns.get(name, missing) for name in mapping}
        ns.update(mapping)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is missing:
                    ns.pop(name, None)
                else:
                    ns[name] = value

    # -- calls -----------------------------------------------------------------------------------------------
    def serve(self):
        protocol.send(OUT_FD, {"type": "ready", "defined": sorted(self.graded)})
        while True:
            try:
                request = protocol.recv(IN_FD)
            except EOFError:
                return
            if request.get("type") == "exit":
                return
            self.answer(request)

    def answer(self, request):
        reply = {"type": "result", "id": request.get("id")}
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(float(request.get("timeout", 10)), 0.01))
        out = CappedText(self.cap)
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        try:
            if request.get("type") == "probe":
                payload = protocol.decode(request.get("payload", {"__dict__": []}))
                value = self.run_probe(str(request["probe"]), payload)
            else:
                value = self.call(request)
            reply.update(ok=True, value=protocol.encode(value))
        except GraderTimeout:
            reply.update(ok=False, timeout=True, error={"ename": "Timeout", "evalue": "time limit reached",
                                                        "traceback": ""})
        except BaseException as exc:
            reply.update(ok=False, error=_format_error(exc))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.stdout, sys.stderr = saved
        _end_strays()
        protocol.send(OUT_FD, reply)

    def function(self, name):
        if name not in self.graded:
            raise NameError(f"name '{name}' is not defined in the notebook")
        return self.graded[name]

    def call(self, request):
        import numpy as np

        fn = self.function(request["name"])
        oracles = {name: self.make_oracle(name, request["id"], params)
                   for name, params in dict(request.get("oracles", {})).items()}
        results = []
        with self.patched(oracles):
            args = [self.to_argument(a) for a in request.get("args", [])]
            for _ in range(int(request.get("repeat", 1))):
                np.random.seed(self.setup["seed"])  # code that ignores the passed rng gives the same draw
                results.append(fn(*args))
        return results if request.get("repeat", 1) != 1 else results[0]

    def to_argument(self, value):
        import numpy as np

        value = protocol.decode(value)
        if isinstance(value, protocol.RngState):
            rng = np.random.Generator(np.random.PCG64())
            rng.bit_generator.state = dict(value)
            return rng
        if isinstance(value, np.ndarray) and value.dtype.kind == "f":
            return value.astype(np.float64)
        return value

    def make_oracle(self, name, call_id, params):
        """A stand-in that asks the parent to compute ``name`` with the reference (it never runs here).
        Keyword arguments are put in place by the reference's parameter names."""
        import numpy as np

        def oracle(*args, **kwargs):
            if kwargs:
                args = list(args)
                for param in params[len(args):]:
                    if param not in kwargs:
                        break
                    args.append(kwargs.pop(param))
                if kwargs:
                    raise TypeError(f"{name}() got unexpected keyword arguments {sorted(kwargs)}")
            payload = []
            rng = None
            for a in args:
                if isinstance(a, np.random.Generator):
                    rng = a
                    payload.append({"__rng__": a.bit_generator.state})
                else:
                    payload.append(protocol.encode(a))
            if name not in templates:
                templates[name] = self.own_result(name, args)
            protocol.send(OUT_FD, {"type": "oracle", "id": call_id, "name": name, "args": payload})
            answer = protocol.recv(IN_FD)
            if not answer.get("ok"):
                raise RuntimeError(answer.get("error", "the reference could not be computed"))
            if rng is not None and "rng_state" in answer:
                rng.bit_generator.state = answer["rng_state"]
            return conform(protocol.decode(answer["value"]), templates[name])

        templates = {}
        oracle.__name__ = name
        return oracle

    def own_result(self, name, args):
        """What the student's own ``name`` returns for these arguments (on copies: the student's Generator
        is not advanced), so that the reference's answer can come back in the same container, dtype and
        shape. None when the student's helper is missing, raises, or takes longer than OWN_HELPER_S (a
        helper that hangs must not hang the caller that the reference's helper stands in for)."""
        import copy

        own = self.graded.get(name)
        if own is None:
            return None
        outer, _ = signal.getitimer(signal.ITIMER_REAL)
        started = time.monotonic()
        previous = signal.signal(signal.SIGALRM, _on_helper_alarm)
        signal.setitimer(signal.ITIMER_REAL, min(OWN_HELPER_S, outer) if outer > 0 else OWN_HELPER_S)
        try:
            return own(*[copy.deepcopy(a) for a in args])
        except (HelperTimeout, Exception):
            return None
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
            if outer > 0:  # the call's own time limit runs on
                left = outer - (time.monotonic() - started)
                if left <= 0:
                    raise GraderTimeout("time limit reached")
                signal.setitimer(signal.ITIMER_REAL, left)

    # -- probes ---------------------------------------------------------------------------------------------
    def run_probe(self, name, payload):
        """The assignment's ``probe_<name>(harness, request)``, else the harness's own."""
        fn = self.probes.get("probe_" + name)
        if fn is not None:
            return fn(self, payload)
        return getattr(self, "probe_" + name)(payload)

    def probe_notebook_facts(self, request):
        """What the grader tells the TA and the student about the notebook as a whole: graded names rebound
        by later cells, and where its PyTorch code could run (the GPU's name, or cpu)."""
        torch = sys.modules.get("torch")
        device = "cpu"
        try:
            if torch is not None and torch.cuda.is_available():
                device = "cuda: " + str(torch.cuda.get_device_name(0))
        except Exception:
            pass
        return {"rebound": self.rebound(), "device": device}


def _end_strays():
    """Stop every process the student's code left behind (a fork bomb's sleepers, background jobs), so
    the next cell has its process limit back. Only this process and the namespace's PID 1 stay."""
    import signal as _signal

    keep = {1, os.getpid()}
    for _ in range(50):
        strays = [int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) not in keep]
        if not strays:
            return
        for pid in strays:
            try:
                os.kill(pid, _signal.SIGKILL)
            except OSError:
                pass
        while True:  # reap our own; PID 1 reaps the orphans
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
        time.sleep(0.01)


def _load_probes(source):
    """The assignment's probe functions (its probes.py, sent as text), before any student code runs."""
    if not source:
        return {}
    namespace = {"__name__": "assignment_probes"}
    exec(compile(source, "/grader/assignment_probes.py", "exec"), namespace)
    return {k: v for k, v in namespace.items() if k.startswith("probe_") and callable(v)}


def _is_function(value):
    """A function the student wrote: plain, lambda, partial, or decorated (functools.cache, wraps)."""
    import functools
    import types

    if isinstance(value, (types.FunctionType, functools.partial)):
        return True
    return callable(value) and not isinstance(value, type) and not _is_module(value) and \
        isinstance(getattr(value, "__wrapped__", None), (types.FunctionType, functools.partial))


def conform(value, like):
    """The reference's ``value`` in the container, dtype and shape of ``like`` (what the student's own
    helper returned), so the student's caller does the same arithmetic on it as on its own helper's
    result. ``like`` None (no helper, or it raised): ``value`` as the reference gives it."""
    import numpy as np

    if like is None:
        return value
    try:
        if isinstance(like, np.ndarray):
            dtype = like.dtype if like.dtype.kind in "biuf" else None
            array = np.asarray(value, dtype=dtype)
            if like.ndim == 0:
                return array.reshape(())
            if like.ndim == 2 and array.ndim == 1 and 1 in like.shape:
                return array.reshape((-1, 1) if like.shape[1] == 1 else (1, -1))
            if like.ndim == 1 and array.ndim == 0:
                return array.reshape(1)
            return array
        if isinstance(like, np.generic) and np.ndim(value) == 0:
            return like.dtype.type(value)
        if isinstance(like, bool):
            return value
        if isinstance(like, float) and np.ndim(value) == 0:
            return float(value)
        if isinstance(like, int) and np.ndim(value) == 0 and float(value).is_integer():
            return int(value)
        if isinstance(like, (list, tuple)) and isinstance(value, (list, tuple, np.ndarray)):
            items = list(value)
            if len(like) == len(items):
                parts = [conform(v, l) for v, l in zip(items, like)]
            elif like:
                parts = [conform(v, like[0]) for v in items]
            else:
                parts = items
            return tuple(parts) if isinstance(like, tuple) else parts
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(like, torch.Tensor):
            return torch.as_tensor(np.asarray(value), dtype=like.dtype).reshape(
                like.shape if np.size(value) == like.numel() else np.shape(value))
    except (TypeError, ValueError):
        return value
    return value


def _is_module(value):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.nn.Module)


def main():
    os.environ.setdefault("MPLBACKEND", "Agg")
    setup = protocol.recv(IN_FD)
    harness = Harness(setup)
    harness.start_shell()
    harness.seed()
    harness.run_cells()
    harness.serve()


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    os._exit(0)
