"""A convolution explained in terms of the image, not of its window matrix.

The engine computes conv2d as windows(X) (the registry's layer_role "windows": every kernel-
sized patch of the image, side by side), a product of the kernel with those windows (layer_role
"convolution") and reshapes between them. A textbook writes instead

    Y[n, o, p, q] = Σ_{c,i,j} K[o, c, i, j] · X[n, c, p·s + i, q·s + j] + b[o]

so `find_convolutions` folds the windows, the reshapes and the product into one step of the
derivation, Y = conv(X, K) + b, and the functions below evaluate the textbook formulas of its
gradients directly on the image (loops over the kernel's positions, no window matrix), for the
layer view to compare with the engine's numbers:

    ∂L/∂K[o, c, i, j] = Σ_{n,p,q} δ[n, o, p, q] · X[n, c, p·s + i, q·s + j]
    ∂L/∂b[o]          = Σ_{n,p,q} δ[n, o, p, q]
    ∂L/∂X[n, c, h, w] = Σ over the windows covering (h, w) of δ · K   (a transposed convolution)
"""
import numpy as np

from .patterns import Compound, VirtualPrim


def _moves(step):
    """A shape-only step (reshape-like): linear, one input, no other role."""
    p = step.prim
    return (p.linear and not p.variadic and len(step.inputs) == 1 and not p.elementwise
            and p.layer_role is None and p.algebra is None)


def find_convolutions(f):
    out = []
    for step in f.rec.steps:
        if step.prim.layer_role != "convolution":
            continue
        comp = _convolution(f, step)
        if comp is not None:
            out.append(comp)
    return out


def _back(f, v, stop):
    """From `v` back through shape moves to the first value made by a step that `stop`
    accepts (or to a leaf): (that value, the steps passed)."""
    steps = []
    while not v.is_leaf and not stop(v.step):
        s = v.step
        if not _moves(s) or not f.inner(v, *[c for c, _ in f.consumers.get(v.index, [])]):
            return None, steps
        steps.append(s)
        v = s.inputs[0]
    return v, steps


def _convolution(f, gemm):
    cols, wmat = gemm.inputs[0], gemm.inputs[1]
    bias = gemm.inputs[2] if len(gemm.inputs) > 2 else None
    win_val, moves1 = _back(f, cols, lambda s: s.prim.layer_role == "windows")
    kernel, moves2 = _back(f, wmat, lambda s: False)
    if kernel is None or not kernel.is_leaf or kernel.value.ndim != 4:
        return None
    if win_val is not None and win_val.is_leaf:
        # the image needs no gradient, so the engine kept only its windows: the image is
        # read back from them
        image, windows = win_val, None
        if image.image is None:
            found = image_from_windows(image.value, kernel.value.shape, _out_shape(f, gemm))
            if found is None:
                return None
            image.image = {"value": found[0], "geometry": found[1]}
        geometry = image.image["geometry"]
    else:
        if win_val is None or not f.inner(win_val, *[
                c for c, _ in f.consumers.get(win_val.index, [])]):
            return None
        windows = win_val.step
        image = windows.inputs[0]
        geometry = None
    y, after = gemm.out, []
    while True:
        cons = f.consumers.get(y.index, [])
        if y.value.ndim == 4 or len(cons) != 1 or not _moves(cons[0][0]) or \
                not f.inner(y, cons[0][0]):
            break
        after.append(cons[0][0])
        y = cons[0][0].out
    if y.value.ndim != 4 or (y is gemm.out and not after):
        return None
    for v in [gemm.out] + [s.out for s in after[:-1]]:
        if not f.inner(v, *[c for c, _ in f.consumers.get(v.index, [])]):
            return None
    if windows is not None:
        geometry = {k: windows.params.get(k) for k in ("kernel", "stride", "padding",
                                                         "dilation")}
    s_h, s_w = geometry["stride"] or (1, 1)
    rows = "p + i" if s_h == 1 else f"{s_h}p + i"
    cols_ = "q + j" if s_w == 1 else f"{s_w}q + j"
    at = f"x[n,c,{rows},{cols_}]"
    lat = "x_{n,c," + rows + "," + cols_ + "}"
    derivs = [f"W[o,c,i,j] at {at} (Σ over the windows covering a pixel)",
              f"{at} (the pixel under W[o,c,i,j] at output (p, q))",
              "1 (summed over images and pixels)"]
    lderivs = [r"W_{o,c,i,j} \text{ at } " + lat, lat, "1"]
    n = 3 if bias is not None else 2
    prim = VirtualPrim("convolution", "conv(x, W) + b" if bias is not None else "conv(x, W)",
                       derivs[:n], ("x", "W", "b")[:n],
                       latex_formula=(r"\mathrm{conv}(x, W) + b" if bias is not None
                                      else r"\mathrm{conv}(x, W)"),
                       latex_derivs=lderivs[:n], symbol="conv", precedence=1)
    inputs = [image, kernel] + ([bias] if bias is not None else [])
    members = ([windows] if windows is not None else []) + [gemm] + moves1 + moves2 + after
    comp = Compound("convolution", prim, inputs, y, members)
    comp.geometry = geometry
    comp.textbook_note = None
    return comp


def _out_shape(f, gemm):
    """(oh, ow) of a convolution's output, from the reshape that makes it 4-D."""
    y = gemm.out
    for _ in range(4):
        if y.value.ndim == 4:
            return y.value.shape[2:]
        cons = f.consumers.get(y.index, []) if hasattr(f, "consumers") else f.get(y.index, [])
        if len(cons) != 1:
            return None
        y = cons[0][0].out
    return None


def image_from_windows(cols, kernel_shape, out_hw):
    """The (padded) image whose kh×kw windows, taken with some stride, are `cols` (N, C·kh·kw,
    oh·ow) in conv2d's channels-first layout: (image, geometry), or None when no stride up to
    the kernel size reproduces the windows exactly. An image that needs no gradient reaches
    the recorded graph only as its windows, so the explanation reads the image back."""
    if out_hw is None:
        return None
    _, c, kh, kw = kernel_shape
    oh, ow = out_hw
    cols = np.asarray(cols)
    if cols.ndim != 3 or cols.shape[1] != c * kh * kw or cols.shape[2] != oh * ow:
        return None
    n = cols.shape[0]
    win = cols.reshape(n, c, kh, kw, oh, ow)
    for s in range(1, min(kh, kw) + 1):
        h, w = (oh - 1) * s + kh, (ow - 1) * s + kw
        image = np.zeros((n, c, h, w), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                image[:, :, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s] = win[:, :, i, j]
        again = np.stack([np.stack([image[:, :, i:i + s * (oh - 1) + 1:s,
                                          j:j + s * (ow - 1) + 1:s] for j in range(kw)], 2)
                          for i in range(kh)], 2)
        if np.array_equal(again, win):
            return image, {"kernel": (kh, kw), "stride": (s, s), "padding": (0, 0),
                           "dilation": (1, 1), "read_back": True}
    return None


# ---- the textbook formulas on the image ----
def _padded(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x


def kernel_gradient(x, delta, geometry):
    """∂L/∂K[o, c, i, j] = Σ_{n,p,q} δ[n, o, p, q] · X[n, c, p·s + i·d, q·s + j·d]."""
    (kh, kw), (sh, sw), (dh, dw) = geometry["kernel"], geometry["stride"], geometry["dilation"]
    x = _padded(np.asarray(x, np.float64), geometry["padding"])
    delta = np.asarray(delta, np.float64)
    _, _, oh, ow = delta.shape
    out = np.zeros((delta.shape[1], x.shape[1], kh, kw))
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]
            out[:, :, i, j] = np.einsum("nopq,ncpq->oc", delta, patch)
    return out


def image_gradient(kernel, delta, x_shape, geometry):
    """∂L/∂X: each output position's δ times the kernel, added onto the pixels of its window."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (geometry["kernel"], geometry["stride"],
                                              geometry["padding"], geometry["dilation"])
    kernel, delta = np.asarray(kernel, np.float64), np.asarray(delta, np.float64)
    n, c, h, w = x_shape
    _, _, oh, ow = delta.shape
    out = np.zeros((n, c, h + 2 * ph, w + 2 * pw))
    for i in range(kh):
        for j in range(kw):
            out[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw] \
                += np.einsum("nopq,oc->ncpq", delta, kernel[:, :, i, j])
    return out[:, :, ph:ph + h, pw:pw + w]
