"""Hypothesis strategies for the hostile inputs issue 15 lists.

int/bool/complex/0-d/empty tensors and arrays, NaN/inf, huge and tiny values, wrong
shapes, negative/zero/huge sizes and seeds, wrong types (str, None, lists, dicts), and plain
``torch.distributions`` objects where pvae expects its own.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st

SPECIAL_FLOATS = [0.0, -0.0, 1.0, -1.0, 0.5, 1e-300, 1e-30, 1e-45, 1e30, 1e300, 3.5e38,
                  -1e300, math.nan, math.inf, -math.inf]  # fmt: skip

#: values that are wrong for almost any argument: wrong types and odd numbers
wrong_types = st.sampled_from(
    [None, "1", "", "nan", [], [1], {}, {"a": 1}, (), object(), b"\x00", 1j, {1, 2}]
)
numbers = st.one_of(
    st.sampled_from(SPECIAL_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(2**70), 2**70),
    st.booleans(),
    st.sampled_from([np.float32(1.5), np.int64(3), np.float64(math.nan), 1 + 2j]),
)
sizes = st.one_of(
    st.integers(-3, 6),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, 10**30]),
    st.sampled_from([1.0, 2.5, math.nan, math.inf, True, False, np.int32(2), "3"]),
)
seeds = st.one_of(
    st.integers(-5, 5),
    st.sampled_from([2**32, 2**32 - 1, 2**63, -(2**63), 2**100, 1.0, math.nan, True, "0"]),
    st.none(),
)
hostile_scalar = st.one_of(numbers, sizes, seeds, wrong_types)

DTYPES = [torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64,
          torch.int32, torch.uint8, torch.bool, torch.complex64]  # fmt: skip


@st.composite
def tensors(draw, *, max_dims: int = 3, max_side: int = 4, unit: bool = False):
    """A tensor of any dtype and shape (0-d and empty included), with odd values."""
    ndim = draw(st.integers(0, max_dims))
    shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from(DTYPES))
    n = math.prod(shape)
    if unit:
        values = st.one_of(st.floats(0, 1), st.sampled_from([0.0, 1.0, -0.5, 2.0, math.nan]))
    else:
        values = st.one_of(st.sampled_from(SPECIAL_FLOATS), st.floats(-10, 10))
    raw = draw(st.lists(values, min_size=n, max_size=n))
    data = torch.tensor(raw, dtype=torch.float64).reshape(shape)
    if dtype.is_complex:
        return (data + 1j * data).to(dtype)
    if dtype == torch.bool:
        return data.nan_to_num(0.0) != 0
    if not dtype.is_floating_point:
        info = torch.iinfo(dtype)
        data = data.nan_to_num(0.0, posinf=info.max, neginf=info.min)
        return data.clamp(info.min, info.max).to(dtype)
    return data.to(dtype)


arrays = tensors().map(
    lambda t: t.numpy() if t.dtype not in (torch.bfloat16,) else t.float().numpy()
)
#: anything that might be handed over as data
hostile_data = st.one_of(
    tensors(),
    arrays,
    wrong_types,
    numbers,
    st.lists(st.one_of(numbers, tensors(max_dims=1)), max_size=4),
    st.tuples(tensors(max_dims=2), tensors(max_dims=2)),
)


def plain_torch_distributions():
    """``torch.distributions`` objects (not Pyro's), where pvae may expect Pyro's."""
    td = torch.distributions
    return st.sampled_from(
        [td.Normal(0.0, 1.0), td.Bernoulli(probs=torch.tensor([0.5, 0.5])),
         td.Categorical(probs=torch.tensor([0.2, 0.8])), td.Uniform(0.0, 1.0)]
    )  # fmt: skip
