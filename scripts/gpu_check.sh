#!/usr/bin/env bash
# The GPU checks, in one run on a machine with an NVIDIA GPU (docs/gpu.md): the CUDA tests
# (tests/test_cuda.py, skipped everywhere else), the check-device tests, and the GPU benchmark.
#
#   bash scripts/gpu_check.sh          # logs in $OUT when set, else /tmp/gpu-check-logs
#
# Made for a lent machine with no network: chainrule runs from this tree (PYTHONPATH=src, the
# same code `pip install -e .` would point at), and CuPy, PyTorch, pytest, hypothesis and
# scikit-learn are used as installed there. Only what is missing is installed: from wheels
# carried in .whl/ if there are any, else from the package index (`pip install -e
# '.[dev,cuda]' torch==2.13.0` fails offline, and would put a second CuPy beside a
# cupy-cuda13x). A PyTorch without CUDA only leaves the PyTorch side of the benchmark out.
# Each step has its own time limit; together at most 7.5 minutes (about 3 expected).
set -uo pipefail
cd "$(dirname "$0")/.."
LOG=${OUT:-/tmp/gpu-check-logs}
mkdir -p "$LOG"
PY=${PYTHON:-$(command -v python3 || command -v python)}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
failed=""

step() {   # step NAME SECONDS COMMAND...: run COMMAND under a time limit, logged to $LOG/NAME.log
  local name=$1 limit=$2
  shift 2
  echo "=== $name (at most ${limit}s): $*"
  timeout "$limit" "$@" 2>&1 | tee "$LOG/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" = 124 ]; then echo "=== $name: TIMED OUT after ${limit}s"; fi
  echo "=== $name: exit $rc"
  if [ "$rc" != 0 ]; then failed="$failed $name"; fi
}

missing_packages() {   # pip names of the modules this run needs that do not import
  "$PY" - <<'EOF'
import importlib
need = {"cupy": "cupy-cuda12x", "torch": "torch==2.13.0", "pytest": "pytest",
        "hypothesis": "hypothesis", "sklearn": "scikit-learn", "numpy": "numpy"}
for module, package in need.items():
    try:
        importlib.import_module(module)
    except Exception:
        print(package)
EOF
}

install() {
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile .whl/*.whl
  fi
  local missing
  missing=$(missing_packages | tr '\n' ' ')
  if [ -n "${missing// /}" ] && ! command -v nvidia-smi >/dev/null; then
    echo "missing: $missing; not installed, as there is no GPU here (no nvidia-smi)"
  elif [ -n "${missing// /}" ]; then
    echo "installing what is missing: $missing"
    timeout 75 "$PY" -m pip install -q $missing \
      || echo "could not install $missing (no network?): the tests that need them skip"
  fi
  "$PY" - <<'EOF'
import platform, numpy, chainrule as cr
print("python", platform.python_version(), "numpy", numpy.__version__, "chainrule",
      cr.__version__, "from", cr.__file__)
for name in ("cupy", "torch"):
    try:
        m = __import__(name)
        print(name, m.__version__)
    except Exception as exc:
        print(name, "missing:", exc)
print("cr.cuda.is_available():", cr.cuda.is_available(), "devices:", cr.cuda.device_count())
if cr.cuda.is_available():
    print("device 0:", cr.cuda.get_device_name(0))
try:
    import torch
    print("torch.cuda.is_available():", torch.cuda.is_available())
except Exception:
    pass
EOF
}

# The check-device tests: the CPU suite's tests on the "check" device (override with CHECK_TESTS).
CHECK_TESTS=${CHECK_TESTS:-$(ls tests/test_*device*.py 2>/dev/null | tr '\n' ' ')}

export PY
export -f install missing_packages    # so that `timeout` can run them in a child bash
step nvidia-smi 15 nvidia-smi
step env 90 bash -c install
step test_cuda 180 "$PY" -m pytest -q -rs -p no:cacheprovider --tb=short --durations=5 \
  tests/test_cuda.py
if [ -n "$CHECK_TESTS" ]; then
  step check_device 45 "$PY" -m pytest -q -rs -p no:cacheprovider --tb=short $CHECK_TESTS
else
  echo "=== check_device: no tests/test_*device*.py here; set CHECK_TESTS to run them"
fi
step bench_gpu 120 "$PY" -m bench.gpu --out "$LOG/bench_gpu.json"

echo "=== logs in $LOG"
if [ -n "$failed" ]; then echo "=== FAILED:$failed"; exit 1; fi
echo "=== all steps passed"
