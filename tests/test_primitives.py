"""Every primitive's gradient, generated from the registry and its sample specs
(tests/primitive_specs.py): float64 gradcheck and gradgradcheck (second derivatives) for
every sample, hypothesis-drawn shapes for the elementwise
and reduction ops, and the composites built from the primitives."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.ops import REGISTRY

from primitive_specs import (DOMAIN_MAKERS, SPECS, all_composites, all_samples,
                             draw, input_domains, inside, nodes_of, sample_id)

SAMPLES = all_samples()


def _inputs(sample):
    return [cr.tensor(a, dtype=cr.float64) for a in sample.args]


def test_every_registered_primitive_has_a_spec():
    missing = sorted(set(REGISTRY) - set(SPECS))
    assert not missing, f"primitives without a sample spec in tests/primitive_specs.py: {missing}"
    unknown = sorted(set(SPECS) - set(REGISTRY))
    assert not unknown, f"specs for primitives that are not registered: {unknown}"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_spec_samples_reach_their_primitive(name):
    """Each sample really records the primitive it claims to test (seen in the graph)."""
    for sample in SPECS[name].samples:
        out = sample.fn(*[t.requires_grad_() for t in _inputs(sample)])
        assert nodes_of(out, name), f"{name}: sample {sample.label!r}"


CONSTRAINED = sorted(n for n in SPECS if set(input_domains(n)) != {"any"})


def test_sampling_domains_come_from_the_registry():
    """Every registry domain has a sample maker, and every constrained entry is checked."""
    assert set(DOMAIN_MAKERS) == set(cr.ops.registry.DOMAINS)
    assert {n for n, p in REGISTRY.items() if p.domain != "any"} <= set(CONSTRAINED)
    assert input_domains("div") == ("any", "nonzero")      # a per-input domain is honoured


@pytest.mark.parametrize("name", CONSTRAINED)
def test_samples_reach_their_primitive_inside_its_domain(name):
    """A primitive whose domain is not "any" (log: positive, relu: nonzero, max: distinct ...)
    gets its inputs from inside that domain in every sample, except a sample that says why
    it leaves it; and at least one sample is inside."""
    domains = input_domains(name)
    checked = 0
    for sample in SPECS[name].samples:
        if sample.outside_domain:
            continue
        nodes = nodes_of(sample.fn(*[t.requires_grad_() for t in _inputs(sample)]), name)
        assert nodes, f"{name}: sample {sample.label!r} does not reach the primitive"
        for node in nodes:
            inputs = [t._data for t in node.inputs]
            if REGISTRY[name].variadic:
                domains = domains[:1] * len(inputs)
            for domain in set(domains):
                group = [x for x, d in zip(inputs, domains) if d == domain]
                assert inside(domain, group), (f"{name}: sample {sample.label!r} has inputs "
                                               f"outside the domain {domain!r}: {group}")
        checked += 1
    assert checked, f"{name}: no sample inside the domain {domains}"


@pytest.mark.parametrize("item", SAMPLES, ids=[sample_id(i) for i in SAMPLES])
def test_gradcheck(item):
    name, sample = item
    assert cr.gradcheck(sample.fn, _inputs(sample))


GRADGRAD = [(n, s) for n, spec in SPECS.items() if spec.second_order
            for s in spec.samples]


@pytest.mark.parametrize("item", GRADGRAD, ids=[sample_id(i) for i in GRADGRAD])
def test_gradgradcheck(item):
    name, sample = item
    assert cr.gradgradcheck(sample.fn, _inputs(sample))


COMPOSITES = all_composites()


@pytest.mark.parametrize("item", COMPOSITES, ids=[sample_id(i) for i in COMPOSITES])
def test_composite_gradcheck(item):
    name, sample = item
    assert cr.gradcheck(sample.fn, _inputs(sample))


@pytest.mark.parametrize("item", COMPOSITES, ids=[sample_id(i) for i in COMPOSITES])
def test_composite_gradgradcheck(item):
    name, sample = item
    assert cr.gradgradcheck(sample.fn, _inputs(sample))


def test_gradcheck_reports_the_worst_entry():
    """A wrong derivative is caught, and the report names input, entry and both values."""
    def wrong(x):  # d/dx of x*x computed as x (detached square), so the engine says x
        return x * x.detach()
    with pytest.raises(cr.errors.GradcheckError, match=r"input 0 .*entry .*engine says"):
        cr.gradcheck(wrong, [cr.tensor([1.0, 3.0])])


# ---- hypothesis: shapes for the elementwise primitives, inputs from each entry's domain ----
# Elementwise primitives that cannot be called as prim(*tensors) on inputs drawn from registry
# domains; their hand-written samples in primitive_specs.py cover them.
HAND_SAMPLED = {"clip": "the bounds are parameters", "where": "cond is a parameter",
                "cast": "the dtype is a parameter", "to_device": "the device is a parameter",
                "binary_cross_entropy": "p lies in (0, 1), which is none of the registry domains"}
ELEMENTWISE = sorted(n for n, p in REGISTRY.items() if p.elementwise and n not in HAND_SAMPLED)
UNARY = [n for n in ELEMENTWISE if len(REGISTRY[n].inputs) == 1]
BINARY = [n for n in ELEMENTWISE if len(REGISTRY[n].inputs) == 2]


def test_every_elementwise_primitive_is_drawn_from_its_domain():
    assert sorted(UNARY + BINARY) == ELEMENTWISE, "a new elementwise arity: add a case"
    assert set(HAND_SAMPLED) <= {n for n, p in REGISTRY.items() if p.elementwise}


small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


@settings(max_examples=25)
@given(name=st.sampled_from(UNARY), shape=small_shapes, seed=st.integers(0, 2**16))
def test_unary_elementwise_any_shape(name, shape, seed):
    (x,) = draw(input_domains(name), [shape], seed)
    assert cr.gradcheck(REGISTRY[name], [cr.tensor(x, dtype=cr.float64)])


@settings(max_examples=25)
@given(name=st.sampled_from(BINARY),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
       seed=st.integers(0, 2**16))
def test_binary_broadcasting_any_shapes(name, shapes, seed):
    fn = REGISTRY[name]
    a, b = draw(input_domains(name), shapes.input_shapes, seed)
    out = fn(cr.tensor(a, dtype=cr.float64), cr.tensor(b, dtype=cr.float64))
    assert out.shape == shapes.result_shape
    assert cr.gradcheck(fn, [cr.tensor(a, dtype=cr.float64), cr.tensor(b, dtype=cr.float64)])


@st.composite
def shape_and_axis(draw):
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3))
    axis = draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                          hnp.valid_tuple_axes(len(shape), min_size=1)))
    return shape, axis, draw(st.booleans())


REDUCTIONS = {"sum": cr.sum, "max": cr.max, "min": cr.min, "mean": cr.mean,
              "logsumexp": cr.logsumexp}


@settings(max_examples=25)
@given(name=st.sampled_from(sorted(REDUCTIONS)), case=shape_and_axis(),
       seed=st.integers(0, 2**16))
def test_reductions_any_axis(name, case, seed):
    shape, axis, keepdims = case
    x = np.random.default_rng(seed).permutation(int(np.prod(shape))).reshape(shape) * 0.3
    fn = REDUCTIONS[name]
    out = fn(cr.tensor(x, dtype=cr.float64), axis=axis, keepdims=keepdims)
    expect = getattr(np, {"logsumexp": "sum"}.get(name, name))(x, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(expect)
    assert cr.gradcheck(lambda t: fn(t, axis=axis, keepdims=keepdims),
                        [cr.tensor(x, dtype=cr.float64)])


# ---- values of the composites at the edges ----
def test_softmax_family_is_stable_at_huge_logits():
    x = cr.tensor([[1e4, 0.0, -1e4], [3.0, 3.0, 3.0]], dtype=cr.float64, requires_grad=True)
    sm, lsm, lse = cr.softmax(x), cr.log_softmax(x), cr.logsumexp(x, axis=1)
    for t in (sm, lsm, lse):
        assert np.isfinite(t.numpy()).all()
    np.testing.assert_allclose(sm.numpy()[0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(lsm.numpy()[0], [0.0, -1e4, -2e4])
    np.testing.assert_allclose(lse.numpy(), [1e4, 3.0 + np.log(3.0)])
    (lse.sum() + lsm.sum()).backward()
    assert np.isfinite(x.grad.numpy()).all()


def test_var_std_match_numpy():
    x = np.random.default_rng(0).normal(size=(3, 4))
    t = cr.tensor(x, dtype=cr.float64)
    np.testing.assert_allclose(t.var().numpy(), x.var(ddof=1))
    np.testing.assert_allclose(t.var(1, correction=0).numpy(), x.var(1))
    np.testing.assert_allclose(t.std(0, keepdims=True).numpy(), x.std(0, ddof=1, keepdims=True))


def test_split_pieces_and_errors():
    x = cr.arange(10.0).reshape(2, 5)
    pieces = cr.split(x, 2, axis=1)
    assert [p.shape for p in pieces] == [(2, 2), (2, 2), (2, 1)]
    with pytest.raises(cr.errors.ShapeError, match="add up to 4"):
        cr.split(x, [1, 3], axis=1)


def test_conventions_doc_table_is_generated_from_the_registry():
    """docs/conventions.md's table of primitives is, byte for byte, what the registry gives."""
    import difflib
    import pathlib
    from chainrule.ops import doc_table
    doc = (pathlib.Path(__file__).parents[1] / "docs" / "conventions.md").read_text("utf-8")
    written, expected = doc_table.table_in(doc), doc_table.primitive_table()
    diff = "\n".join(difflib.unified_diff(written.splitlines(), expected.splitlines(),
                                           "docs/conventions.md", "the registry", lineterm=""))
    assert written == expected, (
        f"docs/conventions.md's primitive table is stale; refresh it with "
        f"`{doc_table.REFRESH}`:\n{diff}")


def test_conventions_doc_table_has_a_row_per_primitive():
    import pathlib
    from chainrule.ops import doc_table
    rows = doc_table.primitive_table().splitlines()[2:]
    assert sorted(r.split("`")[1] for r in rows) == sorted(REGISTRY)
    ops_dir = pathlib.Path(doc_table.__file__).parent
    for prim in REGISTRY.values():
        module = doc_table.defining_module(prim)
        assert (ops_dir / f"{module}.py").is_file(), f"{prim.name}: defined in {module!r}?"


@settings(max_examples=25)
@given(name=st.sampled_from(["softmax", "log_softmax", "var", "std"]), case=shape_and_axis(),
       seed=st.integers(0, 2**16))
def test_normalizing_composites_any_axis(name, case, seed):
    shape, axis, keepdims = case
    x = np.random.default_rng(seed).uniform(-2.0, 2.0, shape)
    if name in ("softmax", "log_softmax"):
        axis = -1 if axis is None or not isinstance(axis, int) else axis
        fn = lambda t: getattr(cr, name)(t, axis)                  # noqa: E731
    else:
        fn = lambda t: getattr(cr, name)(t, axis, keepdims=keepdims, correction=0)  # noqa: E731
        if name == "std" and x.size > 0:   # sqrt at 0 variance has no derivative
            x = x + np.arange(x.size).reshape(shape)
    assert cr.gradcheck(fn, [cr.tensor(x, dtype=cr.float64)])


def test_pow_rules_at_zero_form_no_inf_or_nan():
    """d/da a^0 at a = 0 and d/db 0^b (b ≥ 0) are 0, computed without 0^-1 or ln 0: no
    RuntimeWarning, and finite second derivatives."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = cr.tensor([0.0, 0.0, 2.0], dtype=cr.float64, requires_grad=True)
        b = cr.tensor([0.0, 2.0, 0.0], dtype=cr.float64, requires_grad=True)
        ga, gb = cr.autograd.grad((a ** b).sum(), [a, b], create_graph=True)
        assert ga.tolist() == [0.0, 0.0, 0.0]
        assert gb.tolist() == [0.0, 0.0, np.log(2.0)]
        (haa,) = cr.autograd.grad(ga.sum(), a)
        assert np.isfinite(haa.numpy()).all() and haa.tolist() == [0.0, 2.0, 0.0]


def test_softmax_family_is_stable_in_float32_too():
    x = cr.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
    out = cr.log_softmax(x) + cr.softmax(x)
    assert out.dtype == cr.float32 and np.isfinite(out.numpy()).all()
    out.sum().backward()
    assert np.isfinite(x.grad.numpy()).all()
