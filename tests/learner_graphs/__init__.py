"""Learner graphs: the models a learner or teacher writes first, each explained by
`cr.explain` and checked number by number against an independent NumPy computation.

`cases.py` builds each graph and computes, by hand in NumPy float64, the numbers a textbook
derivation of it contains (forward values, local derivatives, gradients, update steps).
`check.py` finds every one of those quantities in the explanation's data model
(`to_dict()`), compares the value there, reads the number back from every line that shows it,
and checks that the same lines are in the text, Markdown and LaTeX renderings.
"""
