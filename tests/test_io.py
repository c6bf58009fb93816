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
