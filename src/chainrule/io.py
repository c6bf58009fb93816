"""Saving and loading: safetensors files plus a small JSON header; loading never runs code.

A checkpoint is any nest of dicts, lists and tuples whose leaves are tensors, arrays, numbers,
strings, booleans or None (a model's `state_dict()`, an optimizer's, a whole training state).
The arrays go into a safetensors file under their dotted path (`model.0.weight`), so other
safetensors tools read the weights by name; the shape of the nest and the small leaves go into
the file's `__metadata__` as JSON, with a SHA-256 checksum of the arrays. Loading only parses
JSON and raw array bytes, so a file from a stranger cannot execute anything (no pickle here).

Every write is atomic: the bytes go to a temporary file in the same folder, are flushed and
fsync'ed, and `os.replace` swaps the file in; a crash mid-save leaves the previous file intact.
"""
import contextlib
import hashlib
import json
import os
import struct
import tempfile

import numpy as np

from .errors import CheckpointError
from .tensor import Tensor

FORMAT = "chainrule-checkpoint"
VERSION = "1"


# ----- writing -----
def save(obj, path, metadata=None):
    """Write `obj` (a state dict or any nest of tensors, arrays and plain values; a Module is
    saved as its `state_dict()`) to `path` atomically. `metadata` is a small JSON-able dict
    kept in the header (read it back with `load_metadata`).

    >>> import chainrule as cr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> cr.save({"w": cr.tensor([1.0, 2.0]), "step": 3}, path)
    >>> cr.load(path)["step"]
    3
    """
    if not isinstance(obj, (dict, list, tuple)) and hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    arrays = {}
    tree = _encode(obj, "", arrays)
    header = {"format": FORMAT, "version": VERSION,
              "tree": json.dumps(tree, separators=(",", ":")),
              "sha256": _checksum(arrays),
              "user": json.dumps(metadata if metadata is not None else {})}
    from safetensors.numpy import save as st_save
    atomic_write(path, st_save(arrays, metadata=header))


def atomic_write(path, data):
    """Write `data` (bytes) to `path` so that readers see the old file or the new one, never
    a mix: temp file in the same folder, fsync, os.replace, fsync of the folder.

    >>> import chainrule as cr, os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "note.txt")
    ...     cr.io.atomic_write(path, b"old")
    ...     cr.io.atomic_write(path, b"new")
    ...     with open(path, "rb") as f:
    ...         print(f.read(), os.listdir(folder))
    b'new' ['note.txt']
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder):
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _encode(obj, path, arrays):
    """JSON tree for `obj`; arrays are moved into `arrays` under their dotted path."""
    if isinstance(obj, Tensor):
        return {"$tensor": _put(arrays, path, obj.data)}
    if isinstance(obj, np.ndarray):
        return {"$array": _put(arrays, path, obj)}
    if isinstance(obj, np.generic):
        return {"$scalar": _put(arrays, path, np.asarray(obj))}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, dict):
        items = [(k, _encode(v, _join(path, k), arrays)) for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return dict(items)
        for k in obj:
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise CheckpointError(f"save: dict key {k!r} at '{path}' is a "
                                      f"{type(k).__name__}; keys must be str, int or float")
        return {"$items": [[k, v] for k, v in items]}
    if isinstance(obj, list):
        return [_encode(v, _join(path, i), arrays) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"$tuple": [_encode(v, _join(path, i), arrays) for i, v in enumerate(obj)]}
    raise CheckpointError(
        f"save: cannot store a {type(obj).__name__} at '{path or '<root>'}'. Checkpoints hold "
        "tensors, arrays, numbers, strings, None and dicts/lists/tuples of them (no pickled "
        "objects); save a model as model.state_dict().")


def _join(path, key):
    return f"{path}.{key}" if path else str(key)


def _put(arrays, path, array):
    if array.dtype.kind not in "biuf":
        raise CheckpointError(f"save: array at '{path}' has dtype {array.dtype}; only bool, "
                              "integer and floating arrays can be stored")
    key, n = path or "tensor", 1
    while key in arrays:
        key, n = f"{path}#{n}", n + 1
    arrays[key] = array if array.flags.c_contiguous else array.copy(order="C")
    return key


def _checksum(arrays):
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = arrays[key]
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# ----- reading -----
def load(path):
    """Read a file written by `save` and rebuild the saved object (tensors come back as
    Tensors, arrays as arrays). A plain safetensors file (e.g. from PyTorch) loads as a dict of
    Tensors by name. Raises CheckpointError, saying what is wrong, for a missing, truncated or
    corrupted file; never executes code from the file.

    >>> import chainrule as cr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> cr.save({"w": cr.tensor([1.0, 2.0])}, path)
    >>> cr.load(path)["w"].tolist()
    [1.0, 2.0]
    """
    meta, arrays = _read(path)
    if meta.get("format") != FORMAT:
        return {k: Tensor._wrap(v) for k, v in arrays.items()}
    if meta.get("sha256") != _checksum(arrays):
        raise CheckpointError(f"load: {path} is corrupted: the arrays do not match the "
                              "checksum written with them (a damaged copy or a partial "
                              "overwrite). Use an earlier checkpoint.")
    try:
        tree = json.loads(meta["tree"])
        return _decode(tree, arrays)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"load: {path} has a damaged structure header ({exc}); use an "
                              "earlier checkpoint") from None


def load_metadata(path):
    """The `metadata` dict given to `save` (without reading the arrays' values).

    >>> import chainrule as cr, os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.safetensors")
    ...     cr.save({"w": cr.zeros(2)}, path, metadata={"epoch": 3})
    ...     print(cr.io.load_metadata(path))
    {'epoch': 3}
    """
    meta = _read_header(path)[0].get("__metadata__") or {}
    try:
        return json.loads(meta.get("user", "{}"))
    except ValueError:
        raise CheckpointError(f"load_metadata: {path} has a damaged metadata header") from None


def _read(path):
    header, blob = _read_header(path)
    from safetensors.numpy import load as st_load
    try:
        arrays = st_load(blob)
    except Exception as exc:  # the library's own error types vary by version
        raise CheckpointError(f"load: {path} is not a valid safetensors file ({exc})") from None
    return header.get("__metadata__") or {}, arrays


def _read_header(path):
    """Parse and check the safetensors header ourselves, to name what is wrong precisely."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise CheckpointError(f"load: expected a file path (str or os.PathLike), got "
                              f"{type(path).__name__} {path!r}"[:200]) from None
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except FileNotFoundError:
        raise CheckpointError(f"load: no checkpoint at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"load: {path} is a folder, not a checkpoint file") from None
    size = len(blob)
    if size < 8:
        raise CheckpointError(f"load: {path} is truncated: {size} bytes, shorter than the "
                              "8-byte header length a safetensors file starts with")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > size - 8:
        if blob[:1] == b"\x80" or blob[:2] == b"PK":
            raise CheckpointError(f"load: {path} looks like a Python pickle or a torch.save "
                                  "zip file, not safetensors. chainrule never unpickles (it "
                                  "could run code); convert it to safetensors with the tool "
                                  "that wrote it.")
        raise CheckpointError(f"load: {path} is truncated or not a safetensors file: its "
                              f"header claims {n} bytes but the file has {size} in all")
    try:
        header = json.loads(blob[8:8 + n].decode("utf-8"))
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"load: {path} is corrupted: its header is not valid "
                              f"safetensors JSON ({exc})") from None
    expected = 8 + n + max(ends, default=0)
    if size < expected:
        raise CheckpointError(f"load: {path} is truncated: {size} bytes, the header promises "
                              f"{expected} (the write was cut short; use an earlier checkpoint)")
    if size > expected:
        raise CheckpointError(f"load: {path} is corrupted: {size - expected} unexpected "
                              "bytes after the data")
    return header, blob


def _decode(node, arrays):
    if isinstance(node, list):
        return [_decode(v, arrays) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag == "$tensor":
            return Tensor._wrap(arrays[value])
        if tag == "$array":
            return arrays[value]
        if tag == "$scalar":
            return arrays[value][()]
        if tag == "$tuple":
            return tuple(_decode(v, arrays) for v in value)
        if tag == "$items":
            return {k: _decode(v, arrays) for k, v in value}
    return {k: _decode(v, arrays) for k, v in node.items()}
