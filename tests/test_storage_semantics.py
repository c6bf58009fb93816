"""Tensor storage semantics as in PyTorch, each case run on chainrule and on torch with the
same code: `.data` (a tensor sharing memory, outside the graph, with its own version counter,
assignable), views and detach() sharing one version counter with their base, in-place updates
of tensors in the graph recorded (rebase onto a new node, updates of views recorded on their
base), and the PyTorch error where a value saved for backward was modified in place (through
any alias, also the non-differentiable tensors an op reads: class labels, an index, a `where`
condition). Every case either gives the same values and gradients as torch, or raises
RuntimeError where torch does."""
import numpy as np
import pytest

import chainrule as cr
from chainrule import backend

from primitive_specs import SPECS, nodes_of

torch = pytest.importorskip("torch")


def _np(x):
    if hasattr(x, "detach"):
        return x.detach().numpy()
    return np.asarray(x)


def run_both(fn):
    """fn(lib) on both libraries: ('ok', [arrays]) or ('error', exception)."""
    out = {}
    for name, lib in (("cr", cr), ("torch", torch)):
        try:
            out[name] = ("ok", [_np(v) for v in fn(lib)])
        except RuntimeError as exc:
            out[name] = ("error", exc)
    return out["cr"], out["torch"]


def same(fn):
    ours, theirs = run_both(fn)
    assert ours[0] == theirs[0], (f"{fn.__name__}: chainrule {ours[0]} ({ours[1]}), torch "
                                  f"{theirs[0]} ({theirs[1]})")
    if ours[0] == "ok":
        assert len(ours[1]) == len(theirs[1])
        for a, b in zip(ours[1], theirs[1]):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=fn.__name__)
    else:
        assert "modified by an inplace operation" in str(theirs[1]) or \
            "in-place operation" in str(theirs[1])
        words = str(theirs[1]).split(":")[0].split(" (")[0]
        assert words.lower()[:40] in str(ours[1]).lower(), (str(ours[1]), str(theirs[1]))


# ---------------------------------------------------------------- .data

def data_is_an_alias_outside_the_graph(lib):
    p = lib.tensor([1.0, 2.0, 4.0], requires_grad=True)
    (p * p).sum().backward()
    p.data += -0.1 * p.grad
    p.data.add_(p.grad)
    d = p.data
    return p, d.std(), [d.requires_grad, d.is_leaf, d.grad_fn is None], [p._version]


def data_assignment(lib):
    q = lib.tensor([1.0, 1.0], requires_grad=True)
    z = q * 2
    q.data = lib.full((2,), 5.0)
    z.sum().backward()
    r = lib.tensor([1.0, 1.0], requires_grad=True)
    r.data = lib.zeros(3, dtype=lib.float64)      # any shape and dtype
    (r * r).sum().backward()
    return q.grad, q, r.grad, [q.requires_grad, q.is_leaf, tuple(r.shape) == (3,),
                               r.dtype == lib.float64]


def data_change_is_not_seen_by_version_checks(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    y = a.exp()
    y.data.mul_(2)          # PyTorch: silently used (the point of .data)
    y.sum().backward()
    return a.grad, [y._version]


@pytest.mark.parametrize("case", [data_is_an_alias_outside_the_graph, data_assignment,
                                  data_change_is_not_seen_by_version_checks])
def test_data(case):
    same(case)


def test_data_assignment_takes_tensors_only():
    for lib in (cr, torch):
        with pytest.raises(TypeError):
            lib.tensor([1.0]).data = [1.0]


def test_a_training_loop_written_with_data_matches_pytorch():
    def train(lib):
        rng = np.random.default_rng(0)
        w = lib.tensor(rng.standard_normal((3, 1)).astype(np.float32), requires_grad=True)
        x = lib.tensor(rng.standard_normal((8, 3)).astype(np.float32))
        y = lib.tensor(rng.standard_normal((8, 1)).astype(np.float32))
        for _ in range(5):
            loss = ((x @ w - y) ** 2).mean()
            loss.backward()
            w.data -= 0.1 * w.grad.data
            w.grad.data.zero_()
        return [w, loss]
    same(train)


# ---------------------------------------------------------------- version counters

def views_share_the_version_counter(lib):
    x = lib.ones(2, 3)
    views = [x[0], x[:, 1:], x.reshape(6), x.t(), x.T, x.transpose(0, 1), x.expand(2, 2, 3),
             x.detach(), x.view(3, 2)]
    x[0, 0] = 5.0                       # one bump
    views[1].mul_(2)                    # another, through a view
    views[7].add_(1)                    # and through detach()
    copies = [x[lib.tensor([0, 1])], x.clone(), x.data]
    return [x._version] + [v._version for v in views] + [c._version for c in copies], x


def test_views_and_detach_share_one_version_counter():
    same(views_share_the_version_counter)


def test_base_is_the_viewed_tensor():
    x = cr.ones(4)
    assert x[1:]._base is x and x[1:][1:]._base is x and x.reshape(2, 2)._base is x
    assert x._base is None and x[cr.tensor([0, 1])]._base is None and x.detach()._base is None


# ---------------------------------------------------------------- saved values modified

def saved_input_modified_under_no_grad(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    x = a * 1
    y = x.sin()
    with lib.no_grad():
        x.add_(1)
    y.sum().backward()
    return [a.grad]


def saved_input_modified_through_a_view(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    x = a * 1
    y = x.sin()
    with lib.no_grad():
        x.view(2)[0:1].mul_(2)
    y.sum().backward()
    return [a.grad]


def saved_output_modified_through_detach(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    y = a.exp()
    y.detach().mul_(2)
    y.sum().backward()
    return [a.grad]


def saved_output_modified_in_the_graph(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    y = a.tanh()
    y += 1
    y.sum().backward()
    return [a.grad]


def class_labels_modified(lib):
    x = lib.tensor([[1.0, 2.0, 3.0], [1.0, 0.0, 2.0]], requires_grad=True)
    labels = lib.tensor([0, 2])
    loss = lib.nn.functional.cross_entropy(x, labels)
    labels[0] = 1
    loss.backward()
    return [x.grad]


def index_modified(lib):
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    idx = lib.tensor([0, 2])
    y = x[idx]
    idx[0] = 1
    y.sum().backward()
    return [x.grad]


def where_condition_modified(lib):
    x = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    cond = lib.tensor([True, False, True])
    y = lib.where(cond, x, x * 2)
    cond[0] = False
    y.sum().backward()
    return [x.grad]


def embedding_indices_modified(lib):
    table = lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], requires_grad=True)
    idx = lib.tensor([0, 2])
    out = lib.nn.functional.embedding(idx, table)
    idx.zero_()
    out.sum().backward()
    return [table.grad]


@pytest.mark.parametrize("case", [saved_input_modified_under_no_grad,
                                  saved_input_modified_through_a_view,
                                  saved_output_modified_through_detach,
                                  saved_output_modified_in_the_graph, class_labels_modified,
                                  index_modified, where_condition_modified,
                                  embedding_indices_modified])
def test_a_modified_saved_value_raises_as_in_pytorch(case):
    same(case)


# ---------------------------------------------------------------- in-place updates recorded

def iadd_idiv_on_intermediates(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    w = lib.tensor([3.0, 4.0], requires_grad=True)
    x = a * 2
    x += w
    x /= 3
    x -= a
    (x * x).sum().backward()
    return a.grad, w.grad, x, [x.is_leaf, x.requires_grad, x._version]


def imul_reads_the_old_value(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    w = lib.tensor([3.0, 4.0], requires_grad=True)
    x = a + 0
    x *= w
    x.sum().backward()
    return a.grad, w.grad


def leaf_without_grad_becomes_a_node(lib):
    w = lib.tensor([3.0, 4.0], requires_grad=True)
    x = lib.zeros(2)
    x += w * w
    x.sum().backward()
    return w.grad, [x.is_leaf, x.requires_grad]


def buffer_filled_row_by_row(lib):
    w = lib.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    out = lib.zeros(3, 2)
    for i in range(3):
        out[i] = w[i % 2] * (i + 1)
    (out * lib.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])).sum().backward()
    return w.grad, out


def update_of_a_slice(lib):
    a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = a * 1
    x[0:2] *= 3
    (x * x).sum().backward()
    return a.grad, x


def update_of_a_transposed_view(lib):
    a = lib.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    w = lib.tensor([10.0, 20.0], requires_grad=True)
    x = a * 1
    v = x.t()[1]
    v += w
    (x * x).sum().backward()
    return a.grad, w.grad, x, v


def consumer_that_does_not_need_the_changed_value(lib):
    a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    buf = lib.zeros(3)
    buf[0] = a[0] * 2
    y = buf * 1          # mul saves buf, but only the constant's gradient would read it
    buf[1] = a[1] * 3
    buf[0] = a[2]
    (y.sum() + (buf * buf).sum()).backward()
    return a.grad, buf, y


def earlier_consumer_keeps_its_gradient(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    x = a * 2
    y = x + 1           # recorded before the update: differentiates the old x
    x *= 3
    (y.sum() + (x * x).sum()).backward()
    return [a.grad]


def masked_fill_and_zero_on_intermediates(lib):
    a = lib.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x = a * 2
    x.masked_fill_(lib.tensor([True, False, True]), 0.0)
    z = a * 3
    z.zero_()
    z += a
    ((x * x).sum() + z.sum()).backward()
    return [a.grad, x]


def residual_block(lib):
    rng = np.random.default_rng(0)
    w = lib.tensor(rng.standard_normal((4, 4)).astype(np.float32), requires_grad=True)
    x = lib.tensor(rng.standard_normal((2, 4)).astype(np.float32), requires_grad=True)
    out = x @ w
    out += x
    out = out.relu()
    out /= 2
    out.sum().backward()
    return w.grad, x.grad


def retain_grad_follows_the_update(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    x = a * 2
    x.retain_grad()
    x *= 3
    (x * x).sum().backward()
    return a.grad, x.grad


@pytest.mark.parametrize("case", [iadd_idiv_on_intermediates, imul_reads_the_old_value,
                                  leaf_without_grad_becomes_a_node, buffer_filled_row_by_row,
                                  update_of_a_slice, update_of_a_transposed_view,
                                  earlier_consumer_keeps_its_gradient,
                                  consumer_that_does_not_need_the_changed_value,
                                  masked_fill_and_zero_on_intermediates, residual_block,
                                  retain_grad_follows_the_update])
def test_in_place_updates_in_the_graph_match_pytorch(case):
    same(case)


def leaf_that_requires_grad(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    a += 1
    return [a]


def view_of_a_leaf_that_requires_grad(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    v = a[0:1]
    v += 1
    return [a]


def consumer_that_needs_the_changed_value(lib):
    a = lib.tensor([1.0, 2.0], requires_grad=True)
    w = lib.tensor([3.0, 4.0], requires_grad=True)
    x = a * 1
    y = x * w            # w's gradient reads x
    x += 1
    y.sum().backward()
    return [a.grad]


@pytest.mark.parametrize("case", [leaf_that_requires_grad, view_of_a_leaf_that_requires_grad,
                                  consumer_that_needs_the_changed_value])
def test_in_place_updates_pytorch_refuses_are_refused(case):
    same(case)


def test_in_place_results_pass_gradcheck():
    def f(a, w):
        x = a * 2
        x[1:] *= w[1:]
        x += w
        x /= 2
        return x
    assert cr.gradcheck(f, [cr.tensor([1.0, 2.0, 3.0]), cr.tensor([0.5, -1.0, 2.0])])
    assert cr.gradgradcheck(f, [cr.tensor([1.0, 2.0, 3.0]), cr.tensor([0.5, -1.0, 2.0])])


def test_updates_under_no_grad_still_bump_the_version():
    p = cr.tensor([1.0, 2.0], requires_grad=True)
    with cr.no_grad():
        p -= 0.1
        p.mul_(2)
    assert p._version == 2 and p.is_leaf


# ---------------------------------------------------------------- what the engine watches
# The engine checks a node's inputs for in-place changes only where its primitive saves them,
# and its output where it saves it (for div and pow only when the input whose rule reads the
# output requires grad: `output_read_by`). So those registry fields must be honest: a rule
# must give the same gradient when a value its entry does not save is replaced by garbage.

def _saved_value_cases():
    from chainrule.ops import REGISTRY
    cases = []
    for name, spec in sorted(SPECS.items()):
        for sample in spec.samples[:2]:
            cases.append((name, sample))
    return cases, REGISTRY


_CASES, _REGISTRY = _saved_value_cases()


@pytest.mark.parametrize("name, sample", _CASES, ids=[f"{n}-{s.label}" for n, s in _CASES])
def test_rules_read_only_what_their_entry_saves(name, sample):
    prim = _REGISTRY[name]
    xs = [cr.tensor(a, dtype=cr.float64).requires_grad_() for a in sample.args]
    nodes = nodes_of(sample.fn(*xs), name)
    rng = np.random.default_rng(0)

    def host(a):   # (a node on a device: compare on the host)
        return backend.to_host(a) if backend.is_array(a) else np.asarray(a)

    def garbage(a):
        if a.dtype.kind != "f":
            return a
        junk = (rng.uniform(0.5, 2.0, a.shape) * np.where(rng.random(a.shape) < 0.5, -1, 1)
                ).astype(a.dtype)
        return backend.to_device(junk, backend.device_of(a))
    for node in nodes:
        g = backend.to_device(rng.standard_normal(node.out.shape), backend.device_of(node.out))
        args = [t._data for t in node.inputs]
        rules = [(i, prim.vjp_rule(i)) for i in range(len(node.inputs))]
        if prim.first_order_kernel is not None:   # the first-order kernels too
            rules += [(i, k) for i, k in enumerate(prim.first_order_kernel)
                      if k is not None and i < len(node.inputs)]
        for i, rule in rules:
            if rule is None or not node.inputs[i].requires_grad:
                continue
            want = host(rule(g, node.out, *args, **node.params))
            reads_y = "output" in prim.saves and (prim.output_read_by is None or
                                                  i in prim.output_read_by)
            if not reads_y:
                got = host(rule(g, garbage(node.out), *args, **node.params))
                np.testing.assert_allclose(got, want, err_msg=f"{name}: input {i}'s rule reads "
                                           "the output, which its entry does not save")
            if "inputs" not in prim.saves:
                other = [garbage(a) for a in args]
                got = host(rule(g, node.out, *other, **node.params))
                np.testing.assert_allclose(got, want, err_msg=f"{name}: input {i}'s rule reads "
                                           "input values, which its entry does not save")
            elif prim.reads is not None:
                other = [a if j in prim.reads[i] else garbage(a) for j, a in enumerate(args)]
                got = host(rule(g, node.out, *other, **node.params))
                np.testing.assert_allclose(got, want, err_msg=f"{name}: input {i}'s rule reads "
                                           f"inputs beyond reads[{i}] = {prim.reads[i]}")
