"""Your own code on every node: source trees shipped with Ray's runtime_env, then checked on each node before
anything is written.

What ships, and how. Every module a space names (its `models:` factories and `data.source`) is looked at through
its top-level package, imported on the driver:
- a package in a source tree (anywhere but site-packages, dist-packages or the standard library) ships as its
  top-level folder, `py_modules: [/path/to/mypkg]` in `ray.init(runtime_env=...)`: Ray zips it, keeps it in the
  cluster's GCS, and each node unpacks it and puts it on its workers' PYTHONPATH. A single-file top-level module
  (`nets.py` beside the spec) ships as that file: Ray 2.60's py_modules takes a `.py` file as well as a folder
  (ray/_private/runtime_env/py_modules.py: "a .py file, a directory, or a .whl file"); a namespace package ships
  each of its folders. No `working_dir`: nothing of the spec's folder but your packages travels;
- left out of it (Ray's `excludes`, gitignore syntax, plus any .gitignore or .rayignore inside the package, which
  Ray honours): `__pycache__`, compiled and VCS files, tool caches, and data and checkpoint files (`*.pt`, `*.npy`,
  `*.parquet`, archives, ...): data reaches trials from the driver through Ray's object store, checkpoints go to
  the storage;
- a package bigger than Ray's upload limit (GCS_STORAGE_MAX_SIZE: the 512 MiB gRPC message limit, or
  RAY_max_grpc_message_size) is refused before anything starts, one line naming its size and largest files;
- installed packages ship nothing (they must be installed on every node, like sweeper itself, which never ships).
Ray names a shipped folder by its files' contents, not by its name (packaging.get_uri_for_directory), and nodes
keep what they unpacked: a copy of a package under a new name with the same files gets the old one's package
there. The check below catches it and says so.
The same runtime_env goes to a Ray the driver starts itself, so a local run imports what a cluster's nodes do.
A Ray that was already initialised in the process (a notebook, the tests' in-process Ray) keeps its own.

The check (`check_nodes`), after joining a cluster and before anything is written: one tiny task pinned to each
alive node that runs trials imports every module of yours the way a trial does (`usercode.resolve` with the
recorded roots, first on sys.path where they exist on that node; elsewhere the shipped copy answers) and returns
its `code_hash`. A node that cannot import a module, or imports other code than this machine's, is refused in
one line naming the node. The tasks run at once, each in a new worker process of the sweep's runtime_env (about a
second to start, plus your module's own imports). Not asked: a Ray the driver starts itself, or a cluster whose
only node that runs trials is the driver's own (not through Ray Client), like cluster.check_visible: that is this
machine, where the driver imported your code with the same roots first on sys.path a moment before.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweeper.errors import SweeperError
from sweeper.run.driver import cluster
from sweeper.run.training import usercode

if TYPE_CHECKING:
    from sweeper.spec.space import Space

# Ray's limit on one package (ray/_private/runtime_env/packaging.py GCS_STORAGE_MAX_SIZE, = ray_constants'
# GRPC_CPP_MAX_MESSAGE_SIZE unless RAY_max_grpc_message_size says otherwise): Ray refuses a zip this big or bigger.
UPLOAD_LIMIT_BYTES = int(os.environ.get("RAY_max_grpc_message_size", 512 * 1024 * 1024))
EXCLUDES = (
    "__pycache__/", "*.pyc", "*.pyo", ".git/", ".hg/", ".svn/", ".ipynb_checkpoints/", ".mypy_cache/",
    ".pytest_cache/", ".ruff_cache/", ".tox/", ".venv/", "*.egg-info/", ".DS_Store",
    # data and checkpoints: weights, arrays, tables, archives
    "*.pt", "*.pth", "*.ckpt", "*.safetensors", "*.onnx", "*.h5", "*.hdf5", "*.npy", "*.npz", "*.parquet",
    "*.arrow", "*.feather", "*.tfrecord", "*-ubyte", "*.gz", "*.zip", "*.tar", "*.tgz", "*.bz2", "*.xz", "*.zst",
    "*.7z",
)
NEVER_SHIPPED = ("sweeper",)  # installed on every node (cluster.yaml's setup), whatever this machine's copy is
CHECK_TIMEOUT_S = 120.0  # a node's first worker of this job: its start, the package's download, your imports


@dataclass(frozen=True)
class Code:
    """One module of yours a space names: `module.path:function` and the folders it was found under."""

    ref: str
    roots: tuple[str, ...]
    sha256: str = ""  # its code_hash when the space was read (a model's, as sweep.json keeps it); "": ask now

    @property
    def module(self) -> str:
        return self.ref.partition(":")[0]

    @property
    def top(self) -> str:
        return self.module.split(".")[0]


def user_code(space: Space) -> list[Code]:
    """Every module of yours `space` names, once each: its models' factories and its loop, then its data source."""
    out: dict[str, Code] = {}
    for model in space.own_models.values():
        code = Code(model.ref, tuple(model.roots) or usercode.roots_of(space.path), model.sha256)
        out.setdefault(code.module, code)
    if space.data_source is not None:
        code = Code(space.data_source, usercode.roots_of(space.path))
        out.setdefault(code.module, code)
    return list(out.values())


def _installed(path: Path) -> bool:
    if {"site-packages", "dist-packages"} & set(path.parts):
        return True
    stdlib = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib")}
    return any(path.is_relative_to(Path(p).resolve()) for p in stdlib if p)


def trees_of(code: Code) -> list[Path]:
    """Where `code`'s top-level package lies, if in a source tree: its folder (a namespace package: each of its
    folders) or its single .py file; [] for an installed package (or a compiled single-file module)."""
    if code.top in NEVER_SHIPPED:
        return []
    usercode.resolve(code.ref, code.roots, code.ref)  # imported already when the space was read: cached
    top = sys.modules[code.top]
    file = getattr(top, "__file__", None)
    if file is not None:
        path = Path(file).resolve()
        places = [path.parent] if path.name == "__init__.py" else [path]
    else:
        places = [Path(p).resolve() for p in getattr(top, "__path__", ())]
    return [p for p in places if (p.is_dir() or p.suffix == ".py") and not _installed(p)]


def source_trees(codes: Iterable[Code]) -> dict[Path, str]:
    """What ships: each source tree of `codes`, with the first `module.path:function` found in it."""
    out: dict[Path, str] = {}
    for code in codes:
        for tree in trees_of(code):
            out.setdefault(tree, code.ref)
    return out


def _mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def contents(path: Path) -> list[tuple[int, str]]:
    """(bytes, name) of each file Ray would zip for `path`: EXCLUDES and the package's .gitignore/.rayignore
    applied by Ray's own walk (ray/_private/runtime_env/packaging.py, as its upload does)."""
    from ray._private.runtime_env.packaging import _dir_travel, _get_excludes

    include_gitignore = os.environ.get("RAY_RUNTIME_ENV_IGNORE_GITIGNORE", "0") != "1"
    base = path.parent
    files: list[tuple[int, str]] = []

    def handler(p: Path) -> None:
        if p.is_file():
            files.append((p.stat().st_size, p.relative_to(base).as_posix()))

    _dir_travel(path, [_get_excludes(path, list(EXCLUDES))], handler, include_gitignore=include_gitignore)
    return files


def check_size(path: Path, ref: str) -> int:
    """The zip Ray would upload for `path` (stored, not compressed: Ray's ZipFile default), refused at Ray's limit."""
    files = contents(path)
    size = sum(n + 76 + 2 * len(name.encode()) for n, name in files) + 22  # + zip headers per file, + the end
    if size >= UPLOAD_LIMIT_BYTES:
        largest = ", ".join(f"{name} {_mib(n)}" for n, name in sorted(files, reverse=True)[:3])
        raise SweeperError(
            f"{ref}: {path} is {_mib(size)} to ship to the cluster's nodes, over Ray's upload limit of "
            f"{_mib(UPLOAD_LIMIT_BYTES)} (largest files: {largest}); leave files out with a .rayignore in {path} "
            "(gitignore syntax), or install the package on every node"
        )
    return size


def runtime_env(space: Space | None) -> dict[str, Any]:
    """`ray.init`'s runtime_env for `space`: its source trees as py_modules (none: {}), each refused when over
    Ray's upload limit."""
    trees = source_trees(user_code(space)) if space is not None else {}
    for tree, ref in trees.items():
        check_size(tree, ref)
    return {"py_modules": [str(t) for t in trees], "excludes": list(EXCLUDES)} if trees else {}


# -- the check on every node --------------------------------------------------------------------------------

def _reason(exc: BaseException, ref: str) -> str:
    """Why a node could not import `ref`, in a few words: the import's own error (`Type: message`)."""
    inner = exc.__context__ if isinstance(exc, SweeperError) and exc.__context__ is not None else None
    if inner is not None:
        message = str(inner).splitlines()[0] if str(inner) else ""
        return f"{type(inner).__name__}: {message}".rstrip(": ")
    if isinstance(exc, SweeperError):
        return str(exc).removeprefix(f"{ref}: ")
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")


def probe(codes: list[tuple[str, tuple[str, ...]]]) -> dict[str, tuple[bool, str, str]]:
    """On a node: import each `module.path:function` as a trial does; module -> (imported, sha256 or why not,
    the file imported)."""
    out: dict[str, tuple[bool, str, str]] = {}
    for ref, roots in codes:
        module = ref.partition(":")[0]
        try:
            usercode.resolve(ref, roots, ref)
            sha, _, _ = usercode.code_hash(ref)
        except Exception as exc:  # noqa: BLE001 - whatever the import raised is the answer
            out[module] = (False, _reason(exc, ref), "")
            continue
        out[module] = (True, sha, str(getattr(sys.modules.get(module), "__file__", "") or ""))
    return out


def _failed(exc: BaseException | None, timeout_s: float) -> str:
    if exc is None:
        return f"no answer in {timeout_s:.0f} s"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


Answer = dict[str, tuple[bool, str, str]]  # a node's probe: module -> (imported, sha256 or why not, file)


def _ask(nodes: list[dict[str, Any]], codes: list[Code], timeout_s: float) -> dict[str, Answer | str]:
    """Each node's answer (a string: why it gave none), by node label: the probe run there, all at once."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0, max_retries=0)(probe)
    args = [(c.ref, c.roots) for c in codes]
    refs = [task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(args)
            for n in nodes]
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
    answers: dict[str, Answer | str] = {}
    for node, ref in zip(nodes, refs, strict=True):
        label = cluster.node_label(node["NodeID"], node["NodeManagerAddress"])
        if ref not in ready:
            answers[label] = _failed(None, timeout_s)
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001 - cancelling is a courtesy
                pass
            continue
        try:
            answers[label] = ray.get(ref)
        except Exception as exc:  # noqa: BLE001 - the node died, or the runtime_env could not be set up there
            answers[label] = _failed(exc, timeout_s)
    return answers


def check_nodes(space: Space, timeout_s: float = CHECK_TIMEOUT_S) -> dict[str, dict[str, tuple[str, str]]]:
    """Refuse (SweeperError) a cluster where a node that runs trials cannot import a module of yours, or imports
    other code than this machine's. Returns what each node imported: label -> module -> (sha256, file). Nothing
    asked (returns {}) without code of yours, before Ray is started (the driver's own Ray, later: this machine),
    on a cluster whose only node that runs trials is this machine, or one with no such node yet."""
    codes = user_code(space)
    if not codes:
        return {}
    import ray

    if not ray.is_initialized():
        return {}
    nodes = [n for n in cluster.alive_nodes() if cluster.runs_trials(n)]
    if not nodes:  # trials go to nodes that join later: they get the runtime_env, but cannot be asked now
        return {}
    if len(nodes) == 1 and not cluster.client_mode() and nodes[0]["NodeID"] == ray.get_runtime_context().get_node_id():
        return {}  # this machine alone, where the driver imported your code a moment ago: no worker to start
    here = {}
    for code in codes:
        if not code.sha256:
            usercode.resolve(code.ref, code.roots, code.ref)
        here[code.module] = code.sha256 or usercode.code_hash(code.ref)[0]
    answers = _ask(nodes, codes, timeout_s)
    try:  # a Ray initialised before sweeper started it (a notebook's) may ship nothing
        ships = bool(ray.get_runtime_context().runtime_env.get("py_modules"))
    except Exception:  # noqa: BLE001 - unknown: take it that what is shippable was shipped
        ships = True

    of = f"of the cluster's {len(nodes)} nodes"
    silent = [f"{label}: {a}" for label, a in answers.items() if isinstance(a, str)]
    problems = [f"your code: {len(silent)} {of} could not be checked ({'; '.join(silent)})"] if silent else []
    seen: dict[str, dict[str, tuple[str, str]]] = {}
    for code in codes:
        shipped = ships and bool(trees_of(code))
        cannot, other = [], []
        for label, answer in answers.items():
            if isinstance(answer, str):
                continue
            imported, value, file = answer[code.module]
            if not imported:
                cannot.append(f"{label}: {value}")
            elif value != here[code.module]:
                other.append(f"{label}: {file or code.module} has sha256 {value[:12]}, here {here[code.module][:12]}")
            else:
                seen.setdefault(label, {})[code.module] = (value, file)
        if cannot:
            hint = "install what it imports there" if shipped else "install it there or ship it as a source tree"
            if shipped and any(f"No module named '{code.top}'" in c for c in cannot):
                hint = (f"Ray gave those nodes another package for {code.top!r}: it names a shipped package by its "
                        "files, not by its folder's name, so a package with the same files under another name "
                        "(shipped to this cluster before) stood in for it; change any file in it and launch again")
            problems.append(f"{code.module}: {len(cannot)} {of} cannot import it ({'; '.join(cannot)}); {hint}")
        if other:
            hint = ("there it finds its own copy first (in the spec's folder or the working directory): update "
                    "or remove that copy" if shipped else
                    "install this machine's version there, or ship it as a source tree")
            problems.append(f"{code.module}: {len(other)} {of} import other code than this machine's "
                            f"({'; '.join(other)}); {hint}")
    if problems:
        raise SweeperError("; ".join(problems))
    return seen
