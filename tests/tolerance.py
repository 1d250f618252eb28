"""The one rule for comparing floating-point results in this suite.

Two computations of the same value in floating point differ by rounding. A sum of
n terms whose magnitudes are at most M, taken in another order (another replica
split, another oneDNN or XLA kernel, blocks instead of one matmul), can differ by up
to about n * eps * M, where eps is the dtype's machine epsilon (Higham, "Accuracy
and Stability of Numerical Algorithms", Sec. 4.2: the worst-case bound of recursive
summation). A fixed bound like 1e-5 ignores both n and M: too tight for a value
that is a long sum of large terms (the SimCLR gradients failed by chance on one
machine), and too loose for a small one. So every comparison states

  * `dtype`: the precision the values were computed in ("float32", "float64", ...);
  * `terms`: how many values one result is a reduction of (a batch mean over B
    samples of a sum over D features: about B * D; elementwise ops: 1);
  * `magnitude`: the size of the summed terms; by default the largest |expected|,
    at least 1 (results of softmaxes and logs: their inputs are O(1)).

and the bound is `SAFETY * eps * terms * magnitude`, SAFETY = 8 covering the
rounding of the inputs and of both computations. `tests/test_tolerance.py` shows
that this bound still fails real errors (a replica's negatives dropped, a wrong
temperature) in the cases the suite uses it for.
"""

import numpy as np

SAFETY = 8.0


def eps(dtype):
    """Machine epsilon of `dtype` (bfloat16 by its 8-bit mantissa)."""
    name = np.dtype(dtype).name if not isinstance(dtype, str) else dtype
    if name == "bfloat16":
        return 2.0 ** -7
    return float(np.finfo(name).eps)


def bound(expected, *, dtype="float32", terms=1, magnitude=None):
    """Absolute bound for results of `dtype` reducing `terms` values of `magnitude`."""
    if magnitude is None:
        values = np.abs(np.asarray(expected, dtype="float64"))
        magnitude = max(1.0, float(values.max())) if values.size else 1.0
    if terms < 1:
        raise ValueError(f"`terms` must be >= 1; received terms={terms!r}.")
    return SAFETY * eps(dtype) * float(terms) * float(magnitude)


def assert_close(actual, expected, *, dtype="float32", terms=1, magnitude=None, err_msg=""):
    """`np.testing.assert_allclose` with the bound above as `atol` (no `rtol`)."""
    expected = np.asarray(expected, dtype="float64")
    atol = bound(expected, dtype=dtype, terms=terms, magnitude=magnitude)
    np.testing.assert_allclose(np.asarray(actual, dtype="float64"), expected, rtol=0,
                               atol=atol, err_msg=f"{err_msg} (bound {atol:.3g}: {dtype}, "
                               f"{terms} terms)")


def is_close(actual, expected, **kwargs):
    """Whether `assert_close` would pass (for tests that a bound catches an error)."""
    try:
        assert_close(actual, expected, **kwargs)
    except AssertionError:
        return False
    return True
