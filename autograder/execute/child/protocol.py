"""The wire between the trusted parent and the sandboxed child: length-prefixed JSON frames.

This file is copied into the sandbox, so it imports nothing from the autograder package. Values that
cross are plain JSON plus a few tagged forms (see ``encode``). The parent never unpickles or imports
anything that comes over this wire; ``decode`` only builds numbers, strings, lists and numeric arrays.
"""
from __future__ import annotations

import base64
import json
import math
import os
import struct

HEADER = struct.Struct(">I")
MAX_DEPTH = 8
# dtypes an array may have on the wire (bool, integers, floats); anything else is refused
ARRAY_KINDS = {"b", "i", "u", "f"}


class ProtocolError(Exception):
    """A frame that is not what the protocol allows (too big, not JSON, wrong shape)."""


def send(fd: int, message: dict) -> None:
    data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _read_exact(fd: int, n: int) -> bytes:
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv(fd: int, max_bytes: int | None = None) -> dict:
    (length,) = HEADER.unpack(_read_exact(fd, HEADER.size))
    if max_bytes is not None and length > max_bytes:
        raise ProtocolError(f"message of {length} bytes is over the {max_bytes}-byte limit")
    return parse(_read_exact(fd, length))


def parse(body: bytes) -> dict:
    """One frame's body as a JSON object, or ProtocolError (also for nesting too deep to parse)."""
    try:
        message = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant, parse_float=_finite_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"message is not JSON: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message


def _refuse_constant(name):
    raise ValueError(f"{name} is not allowed")


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


class FrameReader:
    """Reads frames from a pipe without ever blocking past a deadline (the parent's side: a child that
    sends half a frame and goes quiet must not hang the grader)."""

    def __init__(self, fd: int, max_bytes: int):
        self.fd, self.max_bytes, self.buffer = fd, max_bytes, bytearray()

    def _frame(self):
        if len(self.buffer) < HEADER.size:
            return None
        (length,) = HEADER.unpack(self.buffer[: HEADER.size])
        if length > self.max_bytes:
            raise ProtocolError(f"message of {length} bytes is over the {self.max_bytes}-byte limit")
        if len(self.buffer) < HEADER.size + length:
            return None
        body = bytes(self.buffer[HEADER.size: HEADER.size + length])
        del self.buffer[: HEADER.size + length]
        return parse(body)

    def read(self, deadline: float):
        """The next message; None at the deadline; EOFError when the other side closed."""
        import select
        import time

        while True:
            message = self._frame()
            if message is not None:
                return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], min(remaining, 1.0))
            if ready:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    raise EOFError("the other side closed the pipe")
                self.buffer += chunk


# ---------------------------------------------------------------------------------------------------------
# values
def encode(value, depth: int = 0):
    """A JSON-able form of ``value``. Unknown objects become ``{"__object__": type name}``."""
    if depth > MAX_DEPTH:
        return {"__object__": "too deeply nested"}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"__float__": repr(float(value))}
    np = _numpy()
    if np is not None:
        if isinstance(value, np.generic):
            if value.dtype.kind in ARRAY_KINDS and value.ndim == 0:
                return encode(value.item(), depth + 1)
        if isinstance(value, np.ndarray):
            return _encode_array(np, value)
    torch = _torch()
    if torch is not None:
        if isinstance(value, torch.Tensor):
            return _encode_array(np, value.detach().cpu().numpy())
        if isinstance(value, torch.device):
            return {"__device__": str(value)}
    if isinstance(value, (list, tuple)):
        tag = "__tuple__" if isinstance(value, tuple) else "__list__"
        return {tag: [encode(v, depth + 1) for v in value]}
    if isinstance(value, RngState):
        return {"__rng__": dict(value)}
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in value.items()]}
    return {"__object__": type(value).__name__}


def _encode_array(np, array):
    if array.dtype.kind not in ARRAY_KINDS:
        return {"__object__": f"ndarray of dtype {array.dtype}"}
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    return {"__ndarray__": base64.b64encode(array.tobytes()).decode("ascii"),
            "dtype": array.dtype.str, "shape": list(array.shape)}


def decode(value, depth: int = 0):
    """Plain Python/numpy values from ``encode``'s form. Builds nothing but numbers, strings, lists,
    numeric arrays and the marker classes below."""
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode(v, depth + 1) for v in value]
    if not isinstance(value, dict) or len(value) == 0:
        raise ProtocolError("malformed value")
    if "__ndarray__" in value:
        np = _numpy()
        dtype = np.dtype(str(value.get("dtype")))
        if dtype.kind not in ARRAY_KINDS or dtype.itemsize > 16:
            raise ProtocolError(f"array dtype {dtype} not allowed")
        shape = value.get("shape")
        if not isinstance(shape, list) or not all(isinstance(s, int) and s >= 0 for s in shape):
            raise ProtocolError("bad array shape")
        raw = base64.b64decode(str(value["__ndarray__"]), validate=True)
        count = 1
        for s in shape:
            count *= s
        if count * dtype.itemsize != len(raw):
            raise ProtocolError("array data does not match its shape")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    if "__float__" in value:
        return float(str(value["__float__"]))
    if "__tuple__" in value:
        return tuple(decode(v, depth + 1) for v in _as_list(value["__tuple__"]))
    if "__list__" in value:
        return [decode(v, depth + 1) for v in _as_list(value["__list__"])]
    if "__dict__" in value:
        pairs = _as_list(value["__dict__"])
        return {_hashable(decode(p[0], depth + 1)): decode(p[1], depth + 1) for p in pairs
                if isinstance(p, list) and len(p) == 2}
    if "__device__" in value:
        return Device(str(value["__device__"]))
    if "__object__" in value:
        return Opaque(str(value["__object__"]))
    if "__rng__" in value:
        return RngState(value["__rng__"])
    raise ProtocolError("unknown value tag")


def _as_list(v):
    if not isinstance(v, list):
        raise ProtocolError("malformed value")
    return v


def _hashable(k):
    return k if isinstance(k, (str, int, float, bool, type(None), tuple)) else repr(k)


class Device(str):
    """A torch.device as its string, e.g. 'cuda' or 'cpu'."""


class Opaque(str):
    """An object that could not cross the wire; holds its type's name."""


class RngState(dict):
    """A numpy Generator's ``bit_generator.state``."""


def _numpy():
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is always installed here
        return None
    return numpy


def _torch():
    import sys

    return sys.modules.get("torch")  # only if the notebook imported it; never import torch for this
