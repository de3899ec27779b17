"""The gate every input model file passes: its format, then one parse in a child process with limits.

Parsers of containers (h5py, zipfile, protobuf, pickle) are C code and large; a crafted or corrupt
file can make one spin, crash or allocate without end. So each input is parsed once in a forked
child under ``resource`` limits (address space, CPU seconds) and a wall-clock timeout; only a file
that parses cleanly there is read in the wconv process itself. The child reports wconv's own errors
back unchanged, and any death (a limit, a signal, a timeout) becomes one line and exit 2.

Where ``os.fork`` or ``resource`` does not exist (Windows), files are parsed in-process, with the
size checks of ``converter.limits`` still applied.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

from . import errors, formats
from .errors import BadInput, ParseSetupFailed, Unsupported, WconvError, about, cut, first_line

CPU_SECONDS = 4.0  # a spinning parser is stopped after this much CPU time (plus the file-size share below)
WALL_SECONDS = 60.0  # one blocked on something else, after this much wall time
SECONDS_PER_GB = 20.0
MEMORY_FLOOR = 512 << 20  # address space the child may add, beyond its size at fork, for any file
MEMORY_PER_FILE_BYTE = 4
_vetted: dict[tuple, str] = {}
_STATE = {"in_child": False}  # the child parses with the same readers, which must not fork again
# What parsers of a malformed file raise (h5py, zipfile, json, protobuf, numpy, and op readers given values of
# the wrong type or size). While a file is read, each means it is not what it claims to be.
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError, OverflowError,
             EOFError, UnicodeError, ZeroDivisionError, RuntimeError, OSError, MemoryError)


@contextmanager
def malformed_input(path):
    """A parser's exception on an untrusted file is bad input (exit 2), said in one line naming the file."""
    try:
        yield
    except MALFORMED as error:
        text = first_line(error) if not isinstance(error, RecursionError) else "nested too deeply"
        raise BadInput(f"{path}: malformed model file ({type(error).__name__}: {text})") from error


def open_input(path) -> str:
    """The format of input ``path`` (keras, torch, onnx, ir), after a clean parse in a limited child."""
    with malformed_input(path):
        return _open_input(path)


def _open_input(path) -> str:
    kind = formats.detect(path)
    if _STATE["in_child"]:
        return kind
    if Path(path).is_dir():  # a save_pretrained folder: each weight file is parsed as any input is
        from .adapters.torch import pretrained

        for file in pretrained.weight_files(path):
            _open_input(file)
        return kind
    stat = os.stat(path)
    key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, kind)
    if key not in _vetted:
        from .progress import stage

        _import_before_fork(path, kind)
        with stage(f"checking {Path(path).name} in a limited process"):
            isolated(_parse, str(path), kind, what=str(path), file_size=stat.st_size)
        _vetted[key] = kind
    return kind


def _parse(path: str, kind: str) -> None:
    """What the child does: everything wconv reads from the file, none of what user code would do."""
    with about(path):
        _parse_kind(path, kind)


def _parse_kind(path: str, kind: str) -> None:
    if kind == "keras":
        from .adapters.keras.files import open_keras

        open_keras(path)
    elif kind == "onnx":
        from .adapters.onnx.reader import read

        try:
            read(path)
        except Unsupported:
            pass  # parsed whole under the limits; a graph wconv cannot convert may still be run (validate)
    elif kind == "ir":
        from .ir_file import load

        load(path)
    elif kind == "torch":
        from .adapters.torch.peek import describe
        from .adapters.torch.state_dict import load_state_dict

        describe(path) if zipfile.is_zipfile(path) else load_state_dict(path)


def _import_before_fork(path, kind: str) -> None:
    """Frameworks the child needs and the parent will import anyway: imported once, here, not in each child."""
    from .frameworks import require

    if kind == "onnx":
        require("onnx")
        require("onnx.reference")
    elif kind == "torch" and not zipfile.is_zipfile(path) and not str(path).endswith(".safetensors"):
        require("torch")  # a legacy (pre-zip) pickle: only torch.load(weights_only=True) reads it


def isolated(function, *args, what: str, file_size: int = 0) -> None:
    """Run ``function(*args)`` in a forked child with limits; re-raise its WconvError, refuse its death."""
    if not hasattr(os, "fork"):
        function(*args)
        return
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(reader)
        _child(function, args, writer, file_size)
    os.close(writer)
    seconds = WALL_SECONDS + SECONDS_PER_GB * file_size / 1e9
    try:
        message, status = _wait(pid, reader, seconds)
    finally:
        os.close(reader)
    if not message and status is not None and os.WIFSIGNALED(status) and os.WTERMSIG(status) in CRASHES:
        message, status = _spawned(function, args, file_size, seconds)
    _outcome(message, status, what)


# Signals of a crash rather than a limit. A fork of a process whose other threads held state (torch, TensorFlow,
# a torch.onnx.export just before) can crash on its own, so a crashed child is run again once in a fresh
# interpreter (slower to start, nothing inherited); a file that crashes that one too is refused.
CRASHES = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGABRT, signal.SIGFPE}


def _spawned(function, args, file_size: int, seconds: float) -> tuple[bytes | None, int | None]:
    """(what a fresh interpreter running ``function(*args)`` under the same limits wrote, its wait status)."""
    import subprocess
    import sys

    request = json.dumps({"function": f"{function.__module__}:{function.__qualname__}", "args": list(args),
                          "file_size": file_size})
    code = "import sys; from converter.untrusted import spawned_main; spawned_main(sys.stdin.read())"
    try:
        done = subprocess.run([sys.executable, "-c", code], input=request.encode(), capture_output=True,
                              timeout=seconds, check=False)
    except subprocess.TimeoutExpired:
        return None, None
    status = (-done.returncode) & 0x7F if done.returncode < 0 else done.returncode << 8  # as os.waitpid gives it
    return done.stdout, status


def spawned_main(request: str) -> None:
    """The fresh interpreter's side of ``_spawned``: the child's work, its report on stdout."""
    import importlib

    job = json.loads(request)
    module, _, name = job["function"].partition(":")
    function = getattr(importlib.import_module(module), name)
    report = os.dup(1)
    _child(function, tuple(job["args"]), report, job["file_size"])


def _child(function, args, writer: int, file_size: int) -> None:
    _STATE["in_child"] = True
    try:
        _quiet()
        _limit(file_size)
    except BaseException as error:  # the machine's limits, not the file: never blamed on it
        result = {"setup": f"{type(error).__name__}: {first_line(error)}"}
    else:
        result = _parse_in_child(function, args)
    try:
        os.write(writer, json.dumps(result).encode())
    finally:
        os._exit(0)


def _parse_in_child(function, args) -> dict:
    try:
        function(*args)
        result = {"ok": True}
    except WconvError as error:
        result = {"error": type(error).__name__, "message": cut(str(error))}
    except MemoryError:
        result = {"limit": "needed more memory than the file's size can justify"}
    except RecursionError:
        result = {"malformed": "RecursionError: nested too deeply"}
    except BaseException as error:  # a parser's exception on a malformed file
        result = {"malformed": f"{type(error).__name__}: {first_line(error)}"}
    return result


def _quiet() -> None:
    """The child's own prints (library warnings) never reach wconv's stderr or stdout, nor does a crash dump
    (faulthandler, which pytest and PYTHONFAULTHANDLER enable, writes to a copy of stderr of its own): the
    child's death is reported by its signal, in one line."""
    import faulthandler

    faulthandler.disable()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)


def _limit(file_size: int) -> None:
    """The child's soft limits lowered to the file's share; never raised, and the hard limits left as the machine
    set them (a batch scheduler's or ``ulimit -v``'s): an unprivileged process may not raise a hard limit."""
    import resource

    current = _address_space()
    if current:
        _lower(resource.RLIMIT_AS, current + MEMORY_FLOOR + MEMORY_PER_FILE_BYTE * file_size)
    cpu = int(CPU_SECONDS + SECONDS_PER_GB * file_size / 1e9) + 1
    _lower(resource.RLIMIT_CPU, int(sum(os.times()[:2])) + cpu)


def _lower(kind: int, wanted: int) -> None:
    """The soft limit ``kind`` at ``wanted``, or where it was if that is lower; the given soft limit is kept for
    ``grant``, which may grow the child's back up to it."""
    import resource

    soft, hard = resource.getrlimit(kind)
    _STATE.setdefault("given", {})[kind] = soft
    if soft == resource.RLIM_INFINITY or wanted < soft:
        resource.setrlimit(kind, (wanted, hard))


def grant(data_bytes: int) -> None:
    """In the child, the limits grown by the share of ``data_bytes`` that a file of that size gets: the data an
    ONNX model keeps beside itself (external data), which the model file's own size did not count. It is read
    under external_data.py's rules first, so its size is what those files really hold. Never past the soft limit
    the child was given."""
    if not _STATE["in_child"] or data_bytes <= 0:
        return
    import resource

    for kind, more in ((resource.RLIMIT_AS, MEMORY_PER_FILE_BYTE * data_bytes),
                       (resource.RLIMIT_CPU, int(SECONDS_PER_GB * data_bytes / 1e9) + 1)):
        soft, hard = resource.getrlimit(kind)
        given = _STATE.get("given", {}).get(kind, hard)
        if soft != resource.RLIM_INFINITY:
            grown = soft + more
            resource.setrlimit(kind, (grown if given == resource.RLIM_INFINITY else min(grown, given), hard))


def _address_space() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _wait(pid: int, reader: int, seconds: float) -> tuple[bytes | None, int | None]:
    """(what the child wrote, its wait status), killing it after ``seconds`` (status None then)."""
    deadline = time.monotonic() + seconds
    chunks = []
    while True:
        left = deadline - time.monotonic()
        ready, _, _ = select.select([reader], [], [], max(left, 0))
        if not ready:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None, None
        chunk = os.read(reader, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    return b"".join(chunks), status


def _outcome(message: bytes | None, status: int | None, what: str) -> None:
    if status is None:
        raise BadInput(f"{what}: reading it did not finish in time; refused as corrupt or hostile")
    if not message:
        cause = f"signal {signal.Signals(os.WTERMSIG(status)).name}" if os.WIFSIGNALED(status) else "no report"
        reason = {"signal SIGXCPU": "over its CPU time limit",
                  "signal SIGKILL": "stopped at its CPU time or memory limit"}.get(cause, cause)
        raise BadInput(f"{what}: reading it failed ({reason}); refused as corrupt or hostile")
    result = json.loads(message)
    if result.get("ok"):
        return
    if "setup" in result:
        raise ParseSetupFailed(f"{what}: could not set up the limited process that parses it ({result['setup']}); "
                               "the file was not read")
    if "error" in result:
        cls = getattr(errors, result["error"], BadInput)
        raise (cls if isinstance(cls, type) and issubclass(cls, WconvError) else BadInput)(result["message"])
    if "limit" in result:
        raise BadInput(f"{what}: reading it {result['limit']}; refused as corrupt or hostile")
    raise BadInput(f"{what}: malformed model file ({result['malformed']})")
