"""The array module, and the one place the compute core gets it from: `backend.np` is the
namespace every op, rule, the engine and the optimizers call (NumPy today; a second backend
such as CuPy is plugged in here). Also array creation, the dtype policy, the random generator
and the BLAS thread count. Host-side code (data, io, explain, train) may use NumPy directly.

Policy (PyTorch's): Python floats become the default dtype (float32 unless changed with
`set_default_dtype`), Python ints become int64, bools stay bool, and a NumPy array keeps its
dtype. A Python scalar mixed with a tensor takes the tensor's dtype, so float32 stays float32.
"""
import numpy as np

float16 = np.dtype(np.float16)
float32 = np.dtype(np.float32)
float64 = np.dtype(np.float64)
int32 = np.dtype(np.int32)
int64 = np.dtype(np.int64)
bool_ = np.dtype(np.bool_)

_default_dtype = float32
_rng = np.random.default_rng()


def set_default_dtype(dtype):
    """Set the dtype that Python floats (and `randn`, `zeros`, ...) become: float32 or float64.

    >>> import chainrule as cr
    >>> cr.set_default_dtype(cr.float64)
    >>> cr.tensor(1.0).dtype
    dtype('float64')
    >>> cr.set_default_dtype(cr.float32)
    """
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        from .errors import DTypeError
        raise DTypeError(f"set_default_dtype: {dtype} is not a floating dtype; use float32 or float64")
    _default_dtype = dtype


def get_default_dtype():
    """The dtype Python floats become (float32 unless changed with `set_default_dtype`).

    >>> import chainrule as cr
    >>> cr.get_default_dtype()
    dtype('float32')
    """
    return _default_dtype


def is_float(dtype):
    return dtype.kind == "f"


def to_array(data, dtype=None):
    """Turn `data` (array, nested lists, scalar) into an ndarray under the dtype policy."""
    try:
        if isinstance(data, np.ndarray):
            arr = data if dtype is None else data.astype(dtype, copy=False)
        else:
            arr = np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise _conversion_error(data, dtype, exc) from exc
    if dtype is None and arr.dtype == float64 and not isinstance(data, (np.ndarray, np.generic)):
        arr = _to_default_float(arr)
    if arr.dtype.kind not in _NUMERIC_KINDS:
        raise _conversion_error(data, dtype, None)
    return arr


def _to_default_float(arr):
    """Python floats into the default dtype, refusing values it cannot hold (1e300 would
    silently become inf in float32)."""
    with np.errstate(over="ignore"):
        out = arr.astype(_default_dtype, copy=False)
    if out is not arr and np.isinf(out).any() and not np.isinf(arr).any():
        from .errors import DTypeError
        big = float(np.max(np.abs(arr)))
        raise DTypeError(f"tensor: the value {big:.4g} does not fit in the default dtype "
                         f"{_default_dtype} (it would become inf); pass dtype=cr.float64 or "
                         "scale the data.")
    return out


_NUMERIC_KINDS = "biufc"  # bool, ints, floats, complex: strings, objects, dates are refused


def _conversion_error(data, dtype, exc):
    """A clear error for data that cannot become a numeric array (ragged lists, strings, None)."""
    from .errors import DTypeError, ShapeError
    what = f"{type(data).__name__} {data!r}"[:120]
    if exc is not None and "inhomogeneous" in str(exc):
        return ShapeError(f"tensor: cannot make a tensor from the ragged nested list {what}: "
                          f"{str(exc).rstrip('.')}. Every row must have the same length; pad the rows first.")
    target = "" if dtype is None else f" of dtype {dtype}"
    reason = f": {str(exc).rstrip('.')}" if exc is not None else ""
    return DTypeError(f"tensor: cannot make a numeric tensor{target} from {what}{reason}. "
                      "Tensors hold numbers only; pass numbers, nested lists of numbers, a "
                      "NumPy array or a Tensor (and a NumPy dtype such as cr.float32).")


def scalar_array(value, like_dtype):
    """A 0-d array for a Python scalar used beside a tensor of `like_dtype`."""
    if like_dtype.kind == "f":
        dtype = like_dtype
    elif isinstance(value, float):
        dtype = _default_dtype
    elif isinstance(value, (bool, np.bool_)):
        dtype = like_dtype
    else:
        dtype = like_dtype if like_dtype.kind in "iu" else int64
    return np.asarray(value, dtype=dtype)


def manual_seed(seed):
    """Seed chainrule's random generator (rand, randn, dropout, init, data shuffling).

    >>> import chainrule as cr
    >>> cr.manual_seed(0)
    >>> first = cr.randn(2).tolist()
    >>> cr.manual_seed(0)
    >>> cr.randn(2).tolist() == first
    True
    """
    global _rng
    _rng = np.random.default_rng(seed)


def rng():
    return _rng


def get_rng_state():
    """The random generator's state, for `set_rng_state` to go back to.

    >>> import chainrule as cr
    >>> state = cr.get_rng_state()
    >>> first = cr.rand(2).tolist()
    >>> cr.set_rng_state(state)
    >>> cr.rand(2).tolist() == first
    True
    """
    return _rng.bit_generator.state


def set_rng_state(state):
    """Restore a state from `get_rng_state`: the draws that followed it repeat.

    >>> import chainrule as cr
    >>> state = cr.get_rng_state()
    >>> first = cr.randint(0, 100, (3,)).tolist()
    >>> cr.set_rng_state(state)
    >>> cr.randint(0, 100, (3,)).tolist() == first
    True
    """
    _rng.bit_generator.state = state


def _blas_limits(n, op):
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        from .errors import ShapeError
        raise ShapeError(f"{op}: the number of threads must be a positive int, got {n!r}")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError as exc:
        from .errors import ChainruleError
        raise ChainruleError(f"{op} needs threadpoolctl to reach NumPy's BLAS; install it with "
                             "`pip install threadpoolctl` (it comes with scikit-learn)") from exc
    return threadpool_limits(limits=n, user_api="blas")


def set_num_threads(n):
    """Limit the BLAS threads of NumPy's matrix products (PyTorch's `set_num_threads`).

    Small models on a busy laptop often train fastest with 1: extra BLAS threads wait for a
    core more than they compute. Uses threadpoolctl (installed with scikit-learn).

    (The example is not run by the doc tests: it would hold for the rest of their run.)

    >>> import chainrule as cr
    >>> cr.set_num_threads(1)  # doctest: +SKIP
    """
    _blas_limits(n, "set_num_threads")


def num_threads(n):
    """A context manager limiting BLAS threads inside its block only.

    >>> import chainrule as cr
    >>> with cr.num_threads(1):
    ...     y = cr.ones(64, 64) @ cr.ones(64, 64)
    """
    return _blas_limits(n, "num_threads")
