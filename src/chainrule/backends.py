"""`torch.backends` as PyTorch programs set it: the switches of NVIDIA's libraries
(`cudnn.benchmark = True`, `cudnn.deterministic`, `cuda.matmul.allow_tf32`) and the
availability probes of other accelerators. chainrule's GPU path is CuPy's (docs/gpu.md), which
has no such switches, so setting them changes nothing; they are here so that such a program
runs with only its import changed.

NOTE: CuPy computes float32 matrix products in full float32 unless told otherwise, i.e. what
PyTorch gives with `allow_tf32 = False`; chainrule does not switch TF32 on whatever is set.

>>> import chainrule as cr
>>> cr.backends.cudnn.benchmark = True
>>> cr.backends.cudnn.is_available(), cr.backends.mps.is_available()
(False, False)
"""
import types


class _Switches(types.SimpleNamespace):
    """Attributes PyTorch programs set and read; setting one has no effect here."""


def _never():
    return False


cudnn = _Switches(benchmark=False, deterministic=False, enabled=True, allow_tf32=True,
                  is_available=_never, version=lambda: None)
cuda = _Switches(matmul=_Switches(allow_tf32=False, allow_fp16_reduced_precision_reduction=True),
                 is_built=_never)
mps = _Switches(is_available=_never, is_built=_never)
