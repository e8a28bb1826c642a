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
