import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from pvae.data import TensorBatches, as_batches, as_tensor


def test_tensor_batches_cover_every_example_once_when_shuffled():
    x = torch.arange(10.0)
    batches = as_batches(x, batch_size=3, shuffle=True, seed=1)
    seen = torch.cat([b[0] for b in batches])
    assert len(batches) == 4
    assert sorted(seen.tolist()) == list(range(10))
    assert seen.tolist() != list(range(10))


def test_same_seed_same_order():
    x = torch.arange(20.0)
    a = [b[0].tolist() for b in as_batches(x, batch_size=4, shuffle=True, seed=3)]
    b = [b[0].tolist() for b in as_batches(x, batch_size=4, shuffle=True, seed=3)]
    assert a == b


def test_tuple_data_gives_tuple_batches():
    x, y = np.ones((6, 2)), np.arange(6)
    (xb, yb), *_ = list(as_batches((x, y), batch_size=4))
    assert xb.dtype == torch.float32 and xb.shape == (4, 2)
    assert yb.tolist() == [0, 1, 2, 3]


def test_dataset_and_dataloader_pass_through():
    ds = TensorDataset(torch.zeros(5, 2))
    loader = as_batches(ds, batch_size=2)
    assert isinstance(loader, DataLoader) and len(loader) == 3
    assert as_batches(loader) is loader


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="`data` contains 1 NaN"):
        as_tensor(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="`data` must be a tensor"):
        as_batches("digits.csv")
    with pytest.raises(ValueError, match="first \\(data\\) dimension 3"):
        TensorBatches([torch.zeros(3), torch.zeros(4)])
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        TensorBatches([torch.zeros(3)], batch_size=0)


def test_a_list_of_single_values_is_stacked_into_examples():
    """Pyro's SVI Part I writes data as a Python list of 0-d tensors."""
    data = [torch.tensor(1.0)] * 6 + [torch.tensor(0.0)] * 4
    (x,) = next(iter(as_batches(data)))
    assert x.shape == (10,) and x.dtype == torch.float32 and x.sum().item() == 6.0
    (mixed,) = next(iter(as_batches([1, 2.5, np.float64(3.0), torch.tensor(4)])))
    assert mixed.tolist() == [1.0, 2.5, 3.0, 4.0] and mixed.dtype == torch.get_default_dtype()
    (rows,) = next(iter(as_batches([[0, 1], [1, 0], [1, 1]])))
    assert rows.shape == (3, 2)
    (xb, yb), *_ = list(as_batches([torch.zeros(5, 2), torch.arange(5)], batch_size=4))
    assert xb.shape == (4, 2) and yb.tolist() == [0, 1, 2, 3]  # arrays: components, as before


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([], "`data` must hold at least one example, got an empty list"),
        (
            [torch.tensor(1.0), torch.zeros(3)],
            r"data\[0\] is a single value and data\[1\] an array",
        ),
        ([torch.tensor(1.0), "a"], r"mixes kinds of items \(data\[1\] is a str\)"),
        (
            [[1, 2], [3]],
            "`data` must be a rectangular array of numbers, got a ragged or unreadable list",
        ),
        ((torch.zeros(3), 1.0), r"`data\[1\]` is a single value, but a tuple's items are"),
        (torch.tensor(2.0), r"`data` must have a first \(data\) dimension, got a single value"),
        ([1.0, float("nan")], "`data` contains 1 NaN"),
    ],
)
def test_bad_lists_get_a_clear_error(data, match):
    with pytest.raises(ValueError, match=match):
        as_batches(data)


def test_every_name_of_the_data_package_resolves():
    import pvae.data

    assert sorted(pvae.data.__all__) == sorted(
        ["FASHION_MNIST_DIR", "DynamicBinarized", "ImageData", "TensorBatches", "as_batches",
         "as_tensor", "binarize", "check_support", "digits", "fashion_mnist", "load_array",
         "load_dataset", "read_idx"]
    )  # fmt: skip
    for name in pvae.data.__all__:
        assert getattr(pvae.data, name) is not None
