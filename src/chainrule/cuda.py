"""`torch.cuda` as PyTorch programs probe it: chainrule computes with NumPy on the CPU, so no
CUDA device is available (GPU support through CuPy is a planned issue, not there yet).
`device = "cuda" if torch.cuda.is_available() else "cpu"` therefore picks the CPU.

>>> import chainrule as cr
>>> cr.cuda.is_available(), cr.cuda.device_count()
(False, 0)
"""


def is_available():
    """False: chainrule has no GPU backend yet.

    >>> import chainrule as cr
    >>> cr.cuda.is_available()
    False
    """
    return False


def device_count():
    """0 CUDA devices.

    >>> import chainrule as cr
    >>> cr.cuda.device_count()
    0
    """
    return 0


def manual_seed(seed):
    """Nothing to seed (no CUDA generator); accepted so seeding code runs unchanged.

    >>> import chainrule as cr
    >>> cr.cuda.manual_seed(0)
    """


def manual_seed_all(seed):
    """Nothing to seed (no CUDA generators).

    >>> import chainrule as cr
    >>> cr.cuda.manual_seed_all(0)
    """
