"""``ResumableDataLoader``: the same order as an uninterrupted pass, whatever the point of interruption."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DistributedSampler

from ugmm_vision.data import ResumableDataLoader


def _epoch(loader: ResumableDataLoader, epoch: int) -> list[list[int]]:
    loader.batch_sampler.sampler.set_epoch(epoch)
    return [batch.tolist() for batch in loader]


@pytest.mark.parametrize(("stop_after", "num_workers"), [(0, 0), (1, 0), (3, 0), (4, 0), (1, 2), (3, 2)])
def test_resumed_pass_continues_the_interrupted_one(stop_after: int, num_workers: int) -> None:
    data = torch.arange(23)
    reference = ResumableDataLoader(data, batch_size=5, shuffle=True, seed=7, num_workers=num_workers)
    full = {epoch: _epoch(reference, epoch) for epoch in (0, 1)}
    assert full[0] != full[1] and sorted(i for batch in full[0] for i in batch) == list(range(23))

    interrupted = ResumableDataLoader(data, batch_size=5, shuffle=True, seed=7, num_workers=num_workers)
    interrupted.batch_sampler.sampler.set_epoch(1)
    iterator = iter(interrupted)
    seen = [next(iterator).tolist() for _ in range(stop_after)]  # the workers have prefetched more than this
    state = interrupted.state_dict()
    assert {k: state[k] for k in ("seed", "epoch", "batches")} == {"seed": 7, "epoch": 1, "batches": stop_after}
    assert bool(state["loader"]) == (stop_after > 0)  # torchdata's state of the pass, when one is under way
    del iterator

    # Its own seed is replaced by the state's.
    resumed = ResumableDataLoader(data, batch_size=5, shuffle=True, num_workers=num_workers)
    resumed.load_state_dict(state)
    resumed.batch_sampler.sampler.set_epoch(1)  # what Lightning does before the first batch
    rest = [batch.tolist() for batch in resumed]
    assert seen + rest == full[1]
    assert resumed.state_dict()["batches"] == 5  # counted from the resumed position: a later save stays right
    assert _epoch(resumed, 2) == _epoch(reference, 2)  # later epochs as uninterrupted


def test_state_from_the_end_of_an_epoch_or_another_epoch_skips_nothing() -> None:
    data = torch.arange(10)
    loader = ResumableDataLoader(data, batch_size=4, shuffle=True, seed=1)
    full = [b.tolist() for b in loader]
    iterator = iter(loader)
    for _ in range(3):  # the whole epoch, without the final StopIteration (as Lightning, which knows the length)
        next(iterator)
    loader.load_state_dict(loader.state_dict())
    assert [b.tolist() for b in loader] == full
    loader.load_state_dict({"seed": 1, "epoch": 0, "batches": 1})
    loader.batch_sampler.sampler.set_epoch(1)  # Lightning moved on to the next epoch (e.g. limit_train_batches)
    assert sorted(i for b in loader for i in b.tolist()) == list(range(10))


def test_skipping_with_a_distributed_sampler_and_no_shuffle() -> None:
    data = torch.arange(10)
    sampler = DistributedSampler(data, num_replicas=2, rank=1, shuffle=True, seed=3)
    loader = ResumableDataLoader(data, batch_size=2, sampler=sampler)  # how Lightning rebuilds it under DDP
    full = [b.tolist() for b in loader]
    iterator = iter(loader)
    next(iterator), next(iterator)
    state = loader.state_dict()
    loader.load_state_dict(state)
    assert [b.tolist() for b in loader] == full[2:]
    loader.load_state_dict({"seed": None, "epoch": 0, "batches": 2})  # a state saved before torchdata's part
    assert [b.tolist() for b in loader] == full[2:]
    sequential = ResumableDataLoader(data, batch_size=4)
    assert [b.tolist() for b in sequential] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_arguments_and_global_generator_untouched() -> None:
    with pytest.raises(ValueError, match="`shuffle`"):
        ResumableDataLoader(torch.arange(4), shuffle=True, sampler=[0, 1, 2, 3])
    with pytest.raises(ValueError, match="`state_dict`"):
        ResumableDataLoader(torch.arange(4)).load_state_dict({"epoch": 0})
    loader = ResumableDataLoader(torch.arange(8), batch_size=3, shuffle=True, seed=0, num_workers=0)
    state = torch.get_rng_state()
    list(loader)
    assert torch.equal(torch.get_rng_state(), state)  # a pass never draws from the global generator


@pytest.mark.parametrize(("accelerator", "pinned"), [("cpu", False), ("cuda", True)])
def test_loader_options_pin_memory_on_cuda_and_keep_only_validation_workers(accelerator: str, pinned: bool) -> None:
    from types import SimpleNamespace

    from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator

    from ugmm_vision.data import DigitsDataModule

    data = DigitsDataModule(num_workers=2)
    data.trainer = SimpleNamespace(accelerator=CUDAAccelerator() if accelerator == "cuda" else CPUAccelerator())
    data.setup("fit")
    train, val = data.train_dataloader(), data.val_dataloader()
    assert train.pin_memory is pinned and val.pin_memory is pinned
    assert not train.persistent_workers  # fresh workers each epoch: a resumed run can repeat their random state
    assert val.persistent_workers
