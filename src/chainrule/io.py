"""Saving and loading: safetensors files plus a small JSON header; loading never runs code.

A checkpoint is any nest of dicts, lists and tuples whose leaves are tensors, arrays, numbers,
strings, booleans or None (a model's `state_dict()`, an optimizer's, a whole training state).
The arrays go into a safetensors file under their dotted path (`model.0.weight`), so other
safetensors tools read the weights by name; the shape of the nest and the small leaves go into
the file's `__metadata__` as JSON. Loading only parses JSON and raw array bytes, so a file from
a stranger cannot execute anything (no pickle here).

Integrity (format version 2): `sha256` covers the arrays (name, dtype, shape and bytes) and
`header_sha256` covers every header field that loading reads (format, version, the structure,
the user metadata and `sha256` itself), so a changed byte anywhere in the file either raises
CheckpointError or leaves the loaded content identical. Version 1 files (chainrule before
format 2) still load; their checksum covers only the arrays.

Checkpoints are host files: a tensor on a device is copied to the host to be saved and loads
on the CPU, unless `load(map_location=...)` puts it elsewhere (the file does not record where
a tensor lived). `Module.load_state_dict` copies values onto whatever device each parameter
is on.

Arrays are stored little-endian as safetensors requires (big-endian arrays are converted on
save). Loading also reads plain safetensors files from other tools as a dict of Tensors;
bfloat16 ("BF16") tensors become float32 (exactly: every bfloat16 value is a float32 value),
and dtypes NumPy cannot represent (float8, ...) are refused by name.

Every write is atomic: the bytes go to a temporary file in the same folder, are flushed and
fsync'ed, and `os.replace` swaps the file in; a crash mid-save leaves the previous file intact,
and the next save into that folder removes temporary files that such crashes left behind. A
re-saved file keeps its permission bits; a new one gets the usual 0o666 minus the umask (the
process umask is never changed).
"""
import contextlib
import hashlib
import io
import json
import os
import re
import secrets
import stat
import struct
import time

import numpy as np

from . import backend
from .errors import CheckpointError
from .tensor import Tensor

FORMAT = "chainrule-checkpoint"
VERSION = "2"
READABLE_VERSIONS = ("1", "2")
MAX_DEPTH = 200  # nesting of saved structures; deeper ones are refused at save time

# safetensors dtype names -> NumPy dtypes (all little-endian, as the format stores them)
_DTYPES = {"BOOL": np.dtype("?"), "U8": np.dtype("u1"), "I8": np.dtype("i1"),
           "U16": np.dtype("<u2"), "I16": np.dtype("<i2"), "U32": np.dtype("<u4"),
           "I32": np.dtype("<i4"), "U64": np.dtype("<u8"), "I64": np.dtype("<i8"),
           "F16": np.dtype("<f2"), "F32": np.dtype("<f4"), "F64": np.dtype("<f8"),
           "BF16": np.dtype("<u2")}  # read as raw 16-bit words, then widened to float32
# dtypes of the safetensors spec that NumPy has no type for: refused by name
_UNSUPPORTED = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64", "C128",
                "U1", "I4", "U4"}


# ----- writing -----
def save(obj, path, metadata=None):
    """Write `obj` (a state dict or any nest of tensors, arrays and plain values; a Module is
    saved as its `state_dict()`) to `path` atomically. `metadata` is a small JSON-able dict
    kept in the header (read it back with `load_metadata`). `path` may also be a binary file
    object (io.BytesIO, an open file), as in PyTorch: the bytes are written to it at its
    position (atomicity is then the caller's: only a path gets the temp-file-and-rename).

    >>> import chainrule as cr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> cr.save({"w": cr.tensor([1.0, 2.0]), "step": 3}, path)
    >>> cr.load(path)["step"]
    3
    """
    if not isinstance(obj, (dict, list, tuple)) and hasattr(obj, "state_dict"):
        obj = obj.state_dict()
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"save: metadata must be a dict (or None), got "
                              f"{type(metadata).__name__}")
    arrays = {}
    try:
        tree = json.dumps(_encode(obj, "", arrays, set(), 0), separators=(",", ":"))
    except RecursionError:
        raise CheckpointError(f"save: the object is nested too deeply to store (more than "
                              f"{MAX_DEPTH} levels)") from None
    try:
        user = json.dumps(metadata if metadata is not None else {})
    except (TypeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"save: metadata must be a JSON-able dict of numbers, strings, "
                              f"lists and dicts ({exc})") from None
    header = {"format": FORMAT, "version": VERSION, "tree": tree,
              "sha256": _checksum(arrays), "user": user}
    header["header_sha256"] = _header_checksum(header)
    from safetensors.numpy import save as st_save
    data = st_save(arrays, metadata=header)
    if _is_file_object(path, "write"):
        path.write(data)
        return
    atomic_write(path, data)


def atomic_write(path, data):
    """Write `data` (bytes) to `path` so that readers see the old file or the new one, never
    a mix: temp file in the same folder, fsync, os.replace, fsync of the folder. An existing
    file's permission bits are kept; temp files left in the folder by killed writers are
    removed afterwards.

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
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode) & 0o777
    except OSError:
        mode = None  # a new file: 0o666 minus the umask, applied by os.open itself
    started = time.time()
    fd, tmp = _create_temp(folder, os.path.basename(path))
    closed = False
    try:
        _lock(fd)  # marks the temp file as in use until it is renamed (see _remove_orphans)
        with open(fd, "wb", closefd=False) as f:
            f.write(data)
            f.flush()
        if mode is not None:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)
            else:
                os.chmod(tmp, mode)
        os.fsync(fd)
        if os.name == "nt":  # Windows cannot rename an open file
            os.close(fd)
            closed = True
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    finally:
        if not closed:
            os.close(fd)
    _fsync_folder(folder)
    _remove_orphans(folder, started)


# our temp files: ".<target>.<12 hex>.chainrule.tmp"; before format 2 they were
# ".<target>.<8 chars from tempfile>.tmp" (only those of .safetensors targets are matched)
_TEMP = re.compile(r"^\..+\.[0-9a-f]{12}\.chainrule\.tmp$")
_OLD_TEMP = re.compile(r"^\..+\.safetensors\.[a-z0-9_]{8}\.tmp$")


def _create_temp(folder, base):
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    for _ in range(100):
        tmp = os.path.join(folder, f".{base[:200]}.{secrets.token_hex(6)}.chainrule.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp  # the OS applies the umask
        except FileExistsError:
            continue
    raise FileExistsError(f"atomic_write: could not create a temporary file in {folder}")


def _lock(fd):
    """Hold an exclusive advisory lock on `fd` (where the OS has flock): a writer that is
    alive keeps it, a killed one loses it, so cleanup can tell an orphan from a live save."""
    try:
        import fcntl
    except ImportError:
        return
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _remove_orphans(folder, started):
    """Remove temp files of our own pattern in `folder` that were last written before this
    save began and that no living writer holds (never raises)."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        if not (_TEMP.match(name) or _OLD_TEMP.match(name)):
            continue
        full = os.path.join(folder, name)
        with contextlib.suppress(OSError):
            if os.stat(full).st_mtime >= started:
                continue  # another save, begun after this one
            _unlink_if_unlocked(full)


def _unlink_if_unlocked(full):
    try:
        import fcntl
    except ImportError:
        os.unlink(full)  # Windows: a file another process has open cannot be removed anyway
        return
    fd = os.open(full, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return  # a living writer holds it
        if os.path.samestat(os.fstat(fd), os.stat(full)):  # still that file under that name
            os.unlink(full)
    finally:
        os.close(fd)


def _fsync_folder(folder):
    with contextlib.suppress(OSError):  # not every platform can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _encode(obj, path, arrays, active, depth):
    """JSON tree for `obj`; arrays are moved into `arrays` under their dotted path. `active`
    holds the ids of the containers being encoded (a cycle is refused), `depth` their count."""
    if isinstance(obj, Tensor):
        return {"$tensor": _put(arrays, path, backend.to_host(obj._data))}
    if isinstance(obj, np.ndarray):
        return {"$array": _put(arrays, path, obj)}
    if backend.is_array(obj):    # a device array (e.g. optimizer state): saved from the host
        return {"$array": _put(arrays, path, backend.to_host(obj))}
    if isinstance(obj, np.generic):
        return {"$scalar": _put(arrays, path, np.asarray(obj))}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if not isinstance(obj, (dict, list, tuple)):
        raise CheckpointError(
            f"save: cannot store a {type(obj).__name__} at '{path or '<root>'}'. Checkpoints "
            "hold tensors, arrays, numbers, strings, None and dicts/lists/tuples of them (no "
            "pickled objects); save a model as model.state_dict().")
    if id(obj) in active:
        raise CheckpointError(f"save: the {type(obj).__name__} at '{path or '<root>'}' contains "
                              "itself (a reference cycle); a checkpoint must be a tree")
    if depth >= MAX_DEPTH:
        raise CheckpointError(f"save: the object is nested more than {MAX_DEPTH} levels deep "
                              f"at '{path}'; flatten it")
    active.add(id(obj))
    try:
        return _encode_container(obj, path, arrays, active, depth + 1)
    finally:
        active.discard(id(obj))


def _encode_container(obj, path, arrays, active, depth):
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise CheckpointError(f"save: dict key {k!r} at '{path}' is a "
                                      f"{type(k).__name__}; keys must be str, int or float")
        items = [(k, _encode(v, _join(path, k), arrays, active, depth)) for k, v in obj.items()]
        if all(isinstance(k, str) and not k.startswith("$") for k in obj):
            return dict(items)
        return {"$items": [[k, v] for k, v in items]}
    parts = [_encode(v, _join(path, i), arrays, active, depth) for i, v in enumerate(obj)]
    return parts if isinstance(obj, list) else {"$tuple": parts}


def _join(path, key):
    return f"{path}.{key}" if path else str(key)


def _put(arrays, path, array):
    if array.dtype.kind not in "biuf":
        raise CheckpointError(f"save: array at '{path}' has dtype {array.dtype}; only bool, "
                              "integer and floating arrays can be stored")
    little = array.dtype.newbyteorder("<")
    if array.dtype != little:  # safetensors stores little-endian bytes
        array = array.astype(little)
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


_HEADER_FIELDS = ("format", "version", "tree", "user", "sha256")


def _header_checksum(meta):
    """SHA-256 of every header field loading reads (`sha256` covers the arrays)."""
    h = hashlib.sha256(b"chainrule-checkpoint header\0")
    for field in _HEADER_FIELDS:
        value = meta.get(field)
        if not isinstance(value, str):
            raise TypeError(f"header field {field!r} is missing or not a string")
        data = value.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()


# ----- reading -----
def load(path, map_location=None, weights_only=None):
    """Read a file written by `save` and rebuild the saved object (tensors come back as
    Tensors, arrays as arrays). A plain safetensors file (e.g. from PyTorch) loads as a dict of
    Tensors by name (bfloat16 ones as float32). Raises CheckpointError, saying what is wrong,
    for a missing, truncated or corrupted file; never executes code from the file.

    `path` may also be a binary file object (io.BytesIO, an open file), read from its
    position, as in PyTorch. `weights_only` is accepted: loading is always weights-only
    (nothing is unpickled).

    map_location: where tensors and arrays go; by default the CPU (the file is a host file
    and does not record where they were saved from). A device ("cuda", "check",
    cr.device(...), an int for a CUDA index); a dict mapping locations to devices, as in
    PyTorch's load, where every stored tensor's location is "cpu" (so {"cpu": "cuda:0"} moves
    them, {"cuda:0": "cpu"} keeps them on the CPU); or a callable `f(tensor, "cpu")`
    returning the tensor to use (None: keep it on the CPU).

    >>> import chainrule as cr, tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "w.safetensors")
    >>> cr.save({"w": cr.tensor([1.0, 2.0])}, path)
    >>> cr.load(path)["w"].tolist()
    [1.0, 2.0]
    """
    place = _placer(map_location)
    path = _source(path, "load")
    meta, arrays = _read(path)
    if not _is_ours(meta, path, "load"):
        return {k: place(Tensor._wrap(v)) for k, v in arrays.items()}
    if meta.get("sha256") != _checksum(arrays):
        raise CheckpointError(f"load: {path} is corrupted: the arrays do not match the "
                              "checksum written with them (a damaged copy or a partial "
                              "overwrite). Use an earlier checkpoint.")
    try:
        tree = json.loads(meta["tree"])
        decoded = _decode(tree, arrays, place)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError,
            RecursionError) as exc:
        raise CheckpointError(f"load: {path} has a damaged structure header "
                              f"({type(exc).__name__}: {exc})"[:500] + "; use an earlier "
                              "checkpoint") from None
    return decoded


_HOST = "cpu"   # the location of every stored tensor: checkpoints are host files


def _placer(map_location):
    """A function putting a loaded (host) Tensor where `map_location` says (see `load`)."""
    if map_location is None:
        return _stay
    if callable(map_location) and not isinstance(map_location, (str, backend.device)) \
            and type(map_location).__name__ != "device":
        return lambda t: _mapped(map_location(t, _HOST), t)
    if isinstance(map_location, dict):   # keys may be names or device objects
        map_location = next((v for k, v in map_location.items() if str(k) == _HOST), _HOST)
    dev = backend.check_device(map_location, "load(map_location=...)")
    return _stay if dev.type == "cpu" else (lambda t: Tensor._wrap(
        backend.to_device(t._data, dev)))


def _stay(t):
    return t


def _mapped(result, t):
    if result is None:
        return t
    if isinstance(result, Tensor):
        return result
    if backend.is_array(result):
        return Tensor._wrap(result)
    raise CheckpointError(f"load: map_location returned a {type(result).__name__}; a callable "
                          "map_location must return a Tensor (or None to keep the CPU one)")


def load_metadata(path):
    """The `metadata` dict given to `save` (reads only the file's header).

    >>> import chainrule as cr, os, tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "model.safetensors")
    ...     cr.save({"w": cr.zeros(2)}, path, metadata={"epoch": 3})
    ...     print(cr.io.load_metadata(path))
    {'epoch': 3}
    """
    path = _source(path, "load_metadata")
    meta = _read_file(path, header_only=True)[0].get("__metadata__", {})
    if not _is_ours(meta, path, "load_metadata"):
        return {}
    try:
        user = json.loads(meta.get("user", "{}"))
    except (ValueError, TypeError, RecursionError):
        user = None
    if not isinstance(user, dict):
        raise CheckpointError(f"load_metadata: {path} has a damaged metadata header (not a "
                              "JSON object)")
    return user


def _is_file_object(obj, method):
    return not isinstance(obj, (str, bytes, os.PathLike)) and callable(getattr(obj, method, None))


class _InMemory:
    """The bytes of a file object being loaded; shown in messages as that object."""

    def __init__(self, f):
        self.content = f.read()
        if not isinstance(self.content, bytes):
            raise CheckpointError(f"load: the file object {f!r} returned "
                                  f"{type(self.content).__name__}, not bytes; open it in binary "
                                  "mode ('rb')"[:300])
        name = getattr(f, "name", None)
        self.label = f"file object {name!r}" if isinstance(name, str) else \
            f"the {type(f).__name__} object"

    def __str__(self):
        return self.label


def _source(path, what):
    """A path string, or for a readable file object its bytes (_InMemory)."""
    if _is_file_object(path, "read"):
        return _InMemory(path)
    return _fspath(path, what)


def _fspath(path, what):
    try:
        return os.fspath(path)
    except TypeError:
        raise CheckpointError(f"{what}: expected a file path (str or os.PathLike), got "
                              f"{type(path).__name__} {path!r}"[:200]) from None


def _is_ours(meta, path, what):
    """True for a chainrule checkpoint whose header checks out, False for a plain safetensors
    file; CheckpointError for a damaged or unknown chainrule header."""
    if meta.get("format") != FORMAT:
        if "tree" in meta or "header_sha256" in meta:  # ours, with a damaged format field
            raise CheckpointError(f"{what}: {path} is corrupted: its header has chainrule "
                                  f"fields but format {str(meta.get('format'))[:40]!r}")
        return False
    version = meta.get("version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"{what}: {path} has checkpoint format version "
                              f"{str(version)[:20]!r}; this chainrule reads versions "
                              f"{', '.join(READABLE_VERSIONS)} (a newer chainrule wrote it, or "
                              "the header is damaged)")
    if version != "1":
        try:
            ok = meta.get("header_sha256") == _header_checksum(meta)
        except TypeError:
            ok = False
        if not ok:
            raise CheckpointError(f"{what}: {path} is corrupted: its header does not match "
                                  "the checksum written with it (a damaged copy or a partial "
                                  "overwrite). Use an earlier checkpoint.")
    return True


def _read(path):
    header, blob = _read_file(path)
    return header.get("__metadata__", {}), _arrays(header, blob, path)


def _read_file(path, header_only=False):
    """(header, data bytes) after checking the header's structure and that the file has
    exactly the size the header promises; with header_only the data is not read."""
    try:
        in_memory = isinstance(path, _InMemory)
        with io.BytesIO(path.content) if in_memory else open(path, "rb") as f:
            size = len(path.content) if in_memory else os.fstat(f.fileno()).st_size
            head = f.read(8)
            if len(head) < 8:
                raise CheckpointError(f"load: {path} is truncated: {len(head)} bytes, shorter "
                                      "than the 8-byte header length a safetensors file "
                                      "starts with")
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                if head[:1] == b"\x80" or head[:2] == b"PK":
                    raise CheckpointError(
                        f"load: {path} looks like a Python pickle or a torch.save zip file, "
                        "not safetensors. chainrule never unpickles (it could run code); "
                        "convert it to safetensors with the tool that wrote it.")
                raise CheckpointError(f"load: {path} is truncated or not a safetensors file: "
                                      f"its header claims {n} bytes but the file has {size} "
                                      "in all")
            text = f.read(n)
            header = _parse_header(text, path)
            end = max((e for _, _, _, (_, e) in header["tensors"]), default=0)
            expected = 8 + n + end
            if size < expected:
                raise CheckpointError(f"load: {path} is truncated: {size} bytes, the header "
                                      f"promises {expected} (the write was cut short; use an "
                                      "earlier checkpoint)")
            if size > expected:
                raise CheckpointError(f"load: {path} is corrupted: {size - expected} "
                                      "unexpected bytes after the data")
            blob = b"" if header_only else f.read(end)
    except FileNotFoundError:
        raise CheckpointError(f"load: no checkpoint at {path}") from None
    except IsADirectoryError:
        raise CheckpointError(f"load: {path} is a folder, not a checkpoint file") from None
    if not header_only and len(blob) != end:
        raise CheckpointError(f"load: {path} is truncated: it shrank while being read")
    return header, blob


def _parse_header(text, path):
    """The safetensors JSON header, checked field by field: {'__metadata__': {str: str},
    'tensors': [(name, dtype name, shape, (begin, end)), ...]}."""
    def bad(why):
        return CheckpointError(f"load: {path} is corrupted: its header is not valid "
                               f"safetensors JSON ({why})"[:600])
    try:
        header = json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad(exc) from None
    except RecursionError:
        raise bad("nested too deeply") from None
    if not isinstance(header, dict):
        raise bad(f"the header is a JSON {type(header).__name__}, not an object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise bad("__metadata__ is not an object of strings")
    tensors = []
    for name, info in header.items():
        if not isinstance(info, dict):
            raise bad(f"entry {name[:80]!r} is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str):
            raise bad(f"entry {name[:80]!r} has no dtype string")
        if not (isinstance(shape, list) and len(shape) <= 64
                and all(_is_count(d) for d in shape)):
            raise bad(f"entry {name[:80]!r}: shape must be a list of at most 64 "
                      "non-negative integers")
        if not (isinstance(offsets, list) and len(offsets) == 2
                and all(_is_count(o) for o in offsets) and offsets[0] <= offsets[1]):
            raise bad(f"entry {name[:80]!r}: data_offsets must be [begin, end] with "
                      "0 <= begin <= end")
        if dtype not in _DTYPES and dtype not in _UNSUPPORTED:
            raise bad(f"entry {name[:80]!r} has unknown dtype {dtype[:40]!r}")
        count = 1
        for d in shape:
            count *= d
        if dtype in _DTYPES and count * _DTYPES[dtype].itemsize != offsets[1] - offsets[0]:
            raise bad(f"entry {name[:80]!r} of shape {shape} and dtype {dtype} needs "
                      f"{count * _DTYPES[dtype].itemsize} bytes, its offsets span "
                      f"{offsets[1] - offsets[0]}")
        tensors.append((name, dtype, tuple(shape), tuple(offsets)))
    position = 0
    for name, _, _, (begin, end) in sorted(tensors, key=lambda t: t[3]):
        if begin != position:
            raise bad(f"entry {name[:80]!r} starts at byte {begin} of the data, expected "
                      f"{position} (offsets overlap or leave a gap)")
        position = end
    return {"__metadata__": meta, "tensors": tensors}


def _is_count(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _arrays(header, blob, path):
    """The arrays of a header checked by `_parse_header`, cut out of `blob`."""
    arrays = {}
    for name, dtype, shape, (begin, end) in header["tensors"]:
        if dtype in _UNSUPPORTED:
            raise CheckpointError(f"load: {path}: tensor {name[:80]!r} has dtype {dtype}, "
                                  "which chainrule does not support (NumPy has no such type); "
                                  "convert it to float32 or float16 with the tool that wrote "
                                  "the file")
        np_dtype = _DTYPES[dtype]
        count = (end - begin) // np_dtype.itemsize
        a = np.frombuffer(blob, np_dtype, count, begin).reshape(shape).copy()
        if dtype == "BF16":  # the top half of a float32: widening is exact
            a = (a.astype("<u4") << 16).view("<f4")
        arrays[name] = a
    return arrays


def _decode(node, arrays, place=_stay):
    """The saved object; `place` puts each Tensor (and array) where map_location says."""
    if isinstance(node, list):
        return [_decode(v, arrays, place) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, value), = node.items()
        if tag == "$tensor":
            return place(Tensor._wrap(arrays[value]))
        if tag == "$array":
            return arrays[value] if place is _stay else place(Tensor._wrap(arrays[value]))._data
        if tag == "$scalar":
            return arrays[value][()]
        if tag == "$tuple":
            return tuple(_decode(v, arrays, place) for v in value)
        if tag == "$items":
            return {k: _decode(v, arrays, place) for k, v in value}
    return {k: _decode(v, arrays, place) for k, v in node.items()}
