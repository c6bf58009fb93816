"""Checkpoint files: round trips, no code execution, clear errors for damaged files, and
atomic writes that survive a writer killed mid-save."""
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import chainrule as cr
from chainrule import io
from chainrule.errors import CheckpointError


def _sample():
    return {
        "model": {"0.weight": cr.tensor(np.arange(6.0).reshape(2, 3), dtype=cr.float32),
                  "0.bias": cr.tensor(np.array([1.5, -2.0]), dtype=cr.float64)},
        "ints": np.array([[1, 2], [3, 4]], dtype=np.int64),
        "mask": np.array([True, False]),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "scalar": np.float32(2.5),
        "zero_d": cr.tensor(7.0),
        "state": {0: {"step": 3.0, "buf": np.ones(2)}, 1: {}},
        "$odd": "dollar keys survive",
        "pair": (1, "two", None),
        "floats": [0.1, float("inf"), True],
        "rng": cr.get_rng_state(),  # 128-bit integers
    }


def test_round_trip_keeps_values_types_and_dtypes(tmp_path):
    obj = _sample()
    path = tmp_path / "ckpt.safetensors"
    io.save(obj, path, metadata={"epoch": 4})
    back = io.load(path)
    assert set(back) == set(obj)
    w = back["model"]["0.weight"]
    assert isinstance(w, cr.Tensor) and w.dtype == cr.float32
    np.testing.assert_array_equal(w.numpy(), obj["model"]["0.weight"].numpy())
    assert back["model"]["0.bias"].dtype == cr.float64
    assert isinstance(back["ints"], np.ndarray) and back["ints"].dtype == np.int64
    np.testing.assert_array_equal(back["mask"], [True, False])
    assert back["empty"].shape == (0, 3)
    assert back["scalar"] == np.float32(2.5) and isinstance(back["scalar"], np.float32)
    assert back["zero_d"].shape == () and back["zero_d"].item() == 7.0
    assert back["state"][0]["step"] == 3.0 and back["state"][1] == {}
    np.testing.assert_array_equal(back["state"][0]["buf"], [1.0, 1.0])
    assert back["$odd"] == "dollar keys survive"
    assert back["pair"] == (1, "two", None)
    assert back["floats"] == [0.1, float("inf"), True]
    assert back["rng"] == obj["rng"]
    assert io.load_metadata(path) == {"epoch": 4}


def test_weights_are_named_by_path_for_other_tools(tmp_path):
    from safetensors.numpy import load_file
    path = tmp_path / "m.safetensors"
    io.save({"model": {"0.weight": cr.ones(2, 2)}}, path)
    assert list(load_file(str(path))) == ["model.0.weight"]


def test_plain_safetensors_file_loads_as_named_tensors(tmp_path):
    from safetensors.numpy import save_file
    path = tmp_path / "plain.safetensors"
    save_file({"fc.weight": np.eye(2, dtype=np.float32)}, str(path))
    back = io.load(path)
    assert list(back) == ["fc.weight"] and isinstance(back["fc.weight"], cr.Tensor)
    np.testing.assert_array_equal(back["fc.weight"].numpy(), np.eye(2))


def test_crafted_pickle_cannot_execute_code(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"w": Payload()}))
    with pytest.raises(CheckpointError, match="never unpickles"):
        io.load(path)
    assert not marker.exists()


def test_crafted_header_only_builds_plain_values(tmp_path):
    """A header naming a class or a missing array stays data or is refused; nothing runs."""
    from safetensors.numpy import save as st_save
    path = tmp_path / "crafted.safetensors"
    tree = '{"obj":{"__class__":"os.system","args":["touch x"]},"w":{"$tensor":"nope"}}'
    meta = {"format": io.FORMAT, "version": "1", "tree": tree,
            "sha256": io._checksum({}), "user": "{}"}
    path.write_bytes(st_save({}, metadata=meta))
    with pytest.raises(CheckpointError, match="damaged structure"):
        io.load(path)
    meta["tree"] = tree.replace(',"w":{"$tensor":"nope"}', "")
    path.write_bytes(st_save({}, metadata=meta))
    assert io.load(path) == {"obj": {"__class__": "os.system", "args": ["touch x"]}}


def test_no_pickle_anywhere_in_chainrule():
    import chainrule
    root = os.path.dirname(chainrule.__file__)
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                text = open(os.path.join(folder, name), encoding="utf-8").read()
                for bad in ("import pickle", "allow_pickle=True", "torch.load", "import dill"):
                    assert bad not in text, f"{name} uses {bad}"


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "c.safetensors"
    io.save({"w": cr.randn(50, 20), "meta": {"epoch": 1}}, path)
    return path, path.read_bytes()


@pytest.mark.parametrize("keep", [0, 5, 12, -1000, -1])
def test_truncated_file_gives_clear_error(saved, keep):
    path, blob = saved
    path.write_bytes(blob[:keep] if keep >= 0 else blob[:len(blob) + keep])
    with pytest.raises(CheckpointError, match="truncated"):
        io.load(path)


def test_corrupted_data_byte_fails_checksum(saved):
    path, blob = saved
    broken = bytearray(blob)
    broken[-100] ^= 0xFF
    path.write_bytes(bytes(broken))
    with pytest.raises(CheckpointError, match="corrupted.*checksum"):
        io.load(path)


def test_corrupted_header_and_trailing_garbage(saved):
    path, blob = saved
    broken = bytearray(blob)
    broken[10] = ord("#")
    path.write_bytes(bytes(broken))
    with pytest.raises(CheckpointError, match="header is not valid"):
        io.load(path)
    path.write_bytes(blob + b"junk")
    with pytest.raises(CheckpointError, match="unexpected bytes"):
        io.load(path)


def test_missing_file_and_unsavable_object(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        io.load(tmp_path / "absent.safetensors")
    with pytest.raises(CheckpointError, match="cannot store a builtin_function"):
        io.save({"f": len}, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match="dtype object"):
        io.save({"a": np.array([None])}, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    io.save({"v": 1}, path)

    def boom(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        io.save({"v": 2}, path)
    monkeypatch.undo()
    assert io.load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["c.safetensors"]


_CHILD = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import chainrule as cr
    path, mode = sys.argv[1], sys.argv[2]
    if mode == "pause":   # stop inside the save, after the bytes are written, before the rename
        def stall(fd):
            print("MID-SAVE", flush=True)
            time.sleep(120)
        os.fsync = stall
        cr.save({"w": cr.tensor(np.full(1000, 2.0)), "epoch": 2}, path)
    else:                 # save two big checkpoints in turn until killed
        big = [cr.tensor(np.full(1_000_000, v)) for v in (1.0, 2.0)]
        print("SAVING", flush=True)
        i = 0
        while True:
            cr.save({"w": big[i % 2], "epoch": 1 + i % 2}, path)
            i += 1
""")


def _spawn(tmp_path, path, mode):
    script = tmp_path / "writer.py"
    script.write_text(_CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(path), mode],
                            stdout=subprocess.PIPE, text=True)
    proc.stdout.readline()  # wait until it is saving
    return proc


def test_kill_mid_save_leaves_previous_checkpoint(tmp_path):
    path = tmp_path / "last.safetensors"
    io.save({"w": cr.tensor(np.full(1000, 1.0)), "epoch": 1}, path)
    proc = _spawn(tmp_path, path, "pause")
    temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert temps, "the writer should be mid-save, with its temporary file written"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    back = io.load(path)
    assert back["epoch"] == 1 and np.all(back["w"].numpy() == 1.0)


@pytest.mark.parametrize("delay", [0.05, 0.3])
def test_kill_during_repeated_saves_never_leaves_a_broken_file(tmp_path, delay):
    import time
    path = tmp_path / "last.safetensors"
    io.save({"w": cr.tensor(np.full(1_000_000, 1.0)), "epoch": 1}, path)
    proc = _spawn(tmp_path, path, "loop")
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    back = io.load(path)  # whole and valid: one of the two versions, never a mix
    assert back["epoch"] in (1, 2)
    assert np.all(back["w"].numpy() == float(back["epoch"]))


# ----- issue 14: checkpoints that detect every change -----
def _same(a, b):
    """Deep equality of loaded checkpoints: types, dtypes, shapes and values (nan == nan)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, cr.Tensor):
        a, b = a.numpy(), b.numpy()
    if isinstance(a, (np.ndarray, np.generic)):
        return (a.dtype == b.dtype and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return a == b


def test_every_flipped_bit_is_detected_or_harmless(tmp_path):
    """A single-bit flip anywhere (the header above all: Adam's step 12.0 once became 13.0
    silently) must raise CheckpointError or load exactly the saved content."""
    import random
    from chainrule import nn, optim
    cr.manual_seed(0)
    model = nn.Linear(3, 2)
    opt = optim.Adam(model.parameters(), lr=0.01)
    for _ in range(12):
        opt.zero_grad()
        model(cr.randn(4, 3)).sum().backward()
        opt.step()
    path = tmp_path / "adam.safetensors"
    io.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 12,
             "pair": (1, "a")}, path, metadata={"epoch": 12})
    blob = path.read_bytes()
    header_end = 8 + int.from_bytes(blob[:8], "little")
    reference, reference_meta = io.load(path), io.load_metadata(path)
    assert reference["optimizer"]["state"][0]["step"] == 12.0
    step = blob.index(b'\\"step\\":12')  # all bits of the step number and around it
    bits = set(range(step * 8, (step + 12) * 8)) | set(range(64))  # and the length prefix
    rng = random.Random(14)
    bits |= set(rng.sample(range(64, header_end * 8), 1200))  # the JSON header
    bits |= set(rng.sample(range(header_end * 8, len(blob) * 8), 200))  # the arrays
    silent, outcomes = [], {"error": 0, "same": 0}
    for bit in sorted(bits):
        broken = bytearray(blob)
        broken[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(broken))
        for fn, expected in ((io.load, reference), (io.load_metadata, reference_meta)):
            try:
                got = fn(path)
            except CheckpointError:
                outcomes["error"] += 1
                continue
            outcomes["same"] += 1
            if not _same(got, expected):
                silent.append((fn.__name__, bit, bytes(blob[bit // 8 - 12:bit // 8 + 4])))
    assert not silent, f"{len(silent)} flips loaded silently changed, e.g. {silent[:3]}"
    assert outcomes["error"] > len(bits)  # most flips are caught, not harmless


def test_version_1_files_still_load(tmp_path):
    """Files written before the header checksum (format version 1) load as before."""
    from safetensors.numpy import save as st_save
    arrays = {"w": np.arange(3.0)}
    meta = {"format": io.FORMAT, "version": "1", "tree": '{"w":{"$array":"w"},"step":4}',
            "sha256": io._checksum(arrays), "user": '{"epoch": 2}'}
    path = tmp_path / "v1.safetensors"
    path.write_bytes(st_save(arrays, metadata=meta))
    back = io.load(path)
    assert back["step"] == 4 and back["w"].tolist() == [0.0, 1.0, 2.0]
    assert io.load_metadata(path) == {"epoch": 2}
    meta["version"] = "3"  # a newer format: refused by name
    path.write_bytes(st_save(arrays, metadata=meta))
    with pytest.raises(CheckpointError, match="format version '3'"):
        io.load(path)


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">f2", ">i4", ">i2", ">u8", ">i8"])
def test_big_endian_arrays_save_little_endian_and_load(tmp_path, dtype):
    from safetensors.numpy import load_file
    a = np.array([[1, 2, 3], [4, 5, 120]], dtype=dtype)
    path = tmp_path / "be.safetensors"
    io.save({"a": a, "t": cr.Tensor._wrap(a[::-1]), "s": a[0, 2]}, path)
    back = io.load(path)
    native = a.dtype.newbyteorder("=")
    assert back["a"].dtype == native and back["a"].tolist() == a.tolist()
    assert back["t"].numpy().dtype == native and back["t"].tolist() == a[::-1].tolist()
    assert back["s"] == 3
    assert load_file(str(path))["a"].tolist() == a.tolist()  # other tools agree


def _bf16_file(path, values, dtype="BF16", metadata=None):
    import json
    words = (np.asarray(values, np.float32).view("<u4") >> 16).astype("<u2")
    header = {"w": {"dtype": dtype, "shape": [len(values)], "data_offsets": [0, 2 * len(values)]}}
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + words.tobytes())


def test_bfloat16_safetensors_loads_as_float32(tmp_path):
    values = [1.0, -2.5, 3.140625, 0.0, float("inf"), 65280.0, 1e-38]
    values = (np.array(values, np.float32).view("<u4") & 0xFFFF0000).view("<f4")  # exact bf16
    path = tmp_path / "bf16.safetensors"
    _bf16_file(path, values)
    w = io.load(path)["w"]
    assert w.dtype == cr.float32 and w.numpy().tobytes() == values.tobytes()


def test_unsupported_safetensors_dtype_is_named(tmp_path):
    path = tmp_path / "f8.safetensors"
    _bf16_file(path, [1.0, 2.0], dtype="F8_E4M3")  # wrong byte count too; the dtype is named
    with pytest.raises(CheckpointError, match="F8_E4M3.*not support"):
        io.load(path)
    path.write_bytes(path.read_bytes().replace(b"F8_E4M3", b"F8_E5M2"))
    with pytest.raises(CheckpointError, match="F8_E5M2.*not support"):
        io.load(path)


def _raw(path, header, data=b""):
    """A file with any header text (or JSON-able value) and data bytes."""
    import json
    text = header.encode() if isinstance(header, str) else json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)


def _entry(offsets, shape=(2,), dtype="F32"):
    return {"dtype": dtype, "shape": list(shape) if isinstance(shape, tuple) else shape,
            "data_offsets": offsets}


_CRAFTED = {
    "offsets string": {"w": _entry("ab")},
    "offsets short": {"w": _entry([])},
    "offsets one": {"w": _entry([8])},
    "offsets text": {"w": _entry([0, "8"])},
    "offsets bool": {"w": _entry([False, 8])},
    "offsets float": {"w": _entry([0, 8.0])},
    "offsets null": {"w": _entry(None)},
    "offsets negative": {"w": _entry([-8, 0])},
    "offsets reversed": {"w": _entry([8, 0])},
    "offsets overlap": {"a": _entry([0, 8]), "b": _entry([4, 12])},
    "offsets gap": {"a": _entry([0, 8]), "b": _entry([12, 20])},
    "offsets beyond": {"w": _entry([0, 1 << 62])},
    "offsets huge shape": {"w": _entry([0, 8], shape=(1 << 62, 1 << 62))},
    "shape negative": {"w": _entry([0, 8], shape=(-2,))},
    "shape text": {"w": _entry([0, 8], shape="2")},
    "shape float": {"w": _entry([0, 8], shape=[2.0])},
    "shape 65 dims": {"w": _entry([0, 8], shape=(1,) * 63 + (2, 1))},
    "shape mismatch": {"w": _entry([0, 8], shape=(3,))},
    "dtype unknown": {"w": _entry([0, 8], dtype="Q32")},
    "dtype missing": {"w": {"shape": [2], "data_offsets": [0, 8]}},
    "entry not object": {"w": [0, 8]},
    "header list": [1, 2],
    "header nested": '{"w":' + "[" * 100_000 + "]" * 100_000 + "}",
    "header not json": '{"w": {"dtype": "F32",',
    "header not utf-8": b"\xff\xfe{}".decode("latin-1"),
    "metadata list": {"__metadata__": [1, 2]},
    "metadata string": {"__metadata__": "x"},
    "metadata numbers": {"__metadata__": {"format": 1}},
}


@pytest.mark.parametrize("case", sorted(_CRAFTED))
def test_crafted_headers_raise_checkpoint_error(tmp_path, case):
    path = tmp_path / "crafted.safetensors"
    header = _CRAFTED[case]
    if case == "header not utf-8":
        path.write_bytes((4).to_bytes(8, "little") + b"\xff\xfe{}")
    elif case.startswith("metadata"):
        _raw(path, header)  # no tensors, no data: only the metadata is wrong
    else:
        _raw(path, header, data=bytes(range(8)) if case != "offsets gap" else bytes(20))
    for fn in (io.load, io.load_metadata):
        with pytest.raises(CheckpointError) as info:
            fn(path)
        assert str(info.value).startswith(("load: ", "load_metadata: ")) and path.name in str(
            info.value)


def _signed(arrays, tree, user="{}", version=io.VERSION):
    """Chainrule metadata with valid checksums (a crafted file by someone who knows them)."""
    meta = {"format": io.FORMAT, "version": version, "tree": tree,
            "sha256": io._checksum(arrays), "user": user}
    meta["header_sha256"] = io._header_checksum(meta)
    return meta


@pytest.mark.parametrize("tree", [
    "[" * 100_000 + "]" * 100_000, '{"a":{"$items":5}}', '{"a":{"$items":[[1]]}}',
    '{"a":{"$items":[[[1],2]]}}', '{"a":{"$tensor":[1]}}', '{"a":{"$tuple":5}}',
    '{"a":{"$array":"missing"}}', '{"a":{"$scalar":null}}', '{"a":', "5" * 5000],
    ids=lambda tree: tree[:24])
def test_crafted_structure_raises_checkpoint_error(tmp_path, tree):
    from safetensors.numpy import save as st_save
    path = tmp_path / "tree.safetensors"
    path.write_bytes(st_save({}, metadata=_signed({}, tree)))
    with pytest.raises(CheckpointError, match="damaged structure"):
        io.load(path)


@pytest.mark.parametrize("user", ["[1, 2]", '"text"', "5", "{", "[" * 100_000],
                         ids=lambda user: user[:10])
def test_load_metadata_of_non_dict_metadata_raises(tmp_path, user):
    from safetensors.numpy import save as st_save
    path = tmp_path / "meta.safetensors"
    path.write_bytes(st_save({}, metadata=_signed({}, "{}", user=user)))
    with pytest.raises(CheckpointError, match="damaged metadata"):
        io.load_metadata(path)
    assert io.load(path) == {}


def test_saving_cycles_deep_nests_and_bad_metadata_raises_checkpoint_error(tmp_path):
    path = tmp_path / "c.safetensors"
    d = {"a": 1}
    d["self"] = d
    with pytest.raises(CheckpointError, match="'self' contains itself"):
        io.save(d, path)
    loop = [1, 2]
    loop.append({"x": (loop,)})
    with pytest.raises(CheckpointError, match=r"list at 'state\.0\.2\.x\.0' contains itself"):
        io.save({"state": [loop]}, path)
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(CheckpointError, match="nested more than"):
        io.save(deep, path)
    with pytest.raises(CheckpointError, match="metadata must be a dict"):
        io.save({}, path, metadata=[1, 2])
    with pytest.raises(CheckpointError, match="JSON-able"):
        io.save({}, path, metadata={"f": len})
    assert not path.exists()
    shared = {"w": np.ones(2)}
    io.save({"a": shared, "b": [shared, shared]}, path)  # shared, not cyclic: fine
    back = io.load(path)
    assert back["b"][1]["w"].tolist() == [1.0, 1.0]
    nested = []
    for _ in range(io.MAX_DEPTH - 1):
        nested = [nested]
    io.save(nested, path)  # as deep as allowed: loads back
    assert _same(io.load(path), nested)


def _orphan(folder, name, age=3600.0):
    path = folder / name
    path.write_bytes(b"x" * 100)
    old = os.stat(path).st_mtime - age
    os.utime(path, (old, old))
    return path


def test_next_save_removes_orphan_temp_files_only(tmp_path):
    orphans = [_orphan(tmp_path, ".last.safetensors.0123456789ab.chainrule.tmp"),
               _orphan(tmp_path, ".best.safetensors.fedcba987654.chainrule.tmp"),
               _orphan(tmp_path, ".last.safetensors.k2_9x0ab.tmp")]  # before format 2
    keep = [_orphan(tmp_path, name) for name in (
        ".notes.txt.abcdefgh.tmp", "last.safetensors.0123456789ab.chainrule.tmp",
        ".x.0123456789ab.chainrule.tmp.bak", "other.tmp", ".last.safetensors.tmp")]
    fresh = _orphan(tmp_path, ".w.safetensors.aaaaaaaaaaaa.chainrule.tmp", age=-3600)  # newer
    live = _orphan(tmp_path, ".w.safetensors.bbbbbbbbbbbb.chainrule.tmp")
    fcntl = pytest.importorskip("fcntl")
    with open(live, "rb") as held:  # a writer in progress holds its lock
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        io.save({"v": 1}, tmp_path / "last.safetensors")
    assert not any(p.exists() for p in orphans)
    assert all(p.exists() for p in keep + [fresh, live])
    assert io.load(tmp_path / "last.safetensors") == {"v": 1}


def test_resave_keeps_mode_and_new_files_follow_umask(tmp_path):
    path = tmp_path / "private.safetensors"
    io.save({"v": 1}, path)
    os.chmod(path, 0o600)
    io.save({"v": 2}, path)
    assert os.stat(path).st_mode & 0o777 == 0o600 and io.load(path) == {"v": 2}
    os.chmod(path, 0o640)
    io.atomic_write(path, b"raw")
    assert os.stat(path).st_mode & 0o777 == 0o640
    old = os.umask(0o027)  # the test may set it; chainrule must not
    try:
        io.save({"v": 3}, tmp_path / "new.safetensors")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "new.safetensors").st_mode & 0o777 == 0o640


def test_save_never_touches_the_process_umask(tmp_path, monkeypatch):
    """Setting the umask is process-wide: a thread creating files meanwhile got 0o666 ones."""
    import inspect

    def forbidden(*args):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", forbidden)
    io.save({"v": 1}, tmp_path / "a.safetensors")
    io.save({"v": 2}, tmp_path / "a.safetensors")
    assert "umask(" not in inspect.getsource(io)


def test_kill_mid_save_orphan_is_removed_by_the_next_save(tmp_path):
    path = tmp_path / "last.safetensors"
    io.save({"epoch": 1}, path)
    proc = _spawn(tmp_path, path, "pause")  # holds its temp file, then dies with kill -9
    temps = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(temps) == 1
    io.save({"epoch": 1}, tmp_path / "other.safetensors")  # the writer is alive: kept
    assert os.path.exists(tmp_path / temps[0])
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    io.save({"epoch": 2}, tmp_path / "best.safetensors")
    assert sorted(os.listdir(tmp_path)) == ["best.safetensors", "last.safetensors",
                                            "other.safetensors", "writer.py"]
