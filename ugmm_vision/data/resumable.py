"""``ResumableDataLoader``: torchdata's ``StatefulDataLoader`` with an epoch-seeded order, resumed mid-epoch exactly.

Lightning saves the ``state_dict()`` of every training loader that has one inside each checkpoint and hands it
back through ``load_state_dict()`` when ``fit(ckpt_path=...)`` resumes. A stock ``DataLoader`` has neither: a
run resumed from a checkpoint written part-way through an epoch starts that epoch's data over in a new order
(Lightning warns "your dataloader is not resumable"), so the resumed run neither repeats the uninterrupted one
nor sees every sample once in that epoch.

torchdata's ``StatefulDataLoader`` does the saving and restoring: the sampler's position, the worker processes'
state (batches they had prefetched are not lost or repeated), the workers' base seed and any ``Stateful`` dataset.
Two things it leaves to its user are added here:

* The order is a function of ``(seed, epoch)`` — the recipe of ``DistributedSampler`` — through
  :class:`EpochSeededSampler`, and worker seeds come from a generator reseeded from ``(seed, epoch)``: once built,
  the loader never draws from the global random number generators, so a resumed run with
  :class:`~ugmm_vision.callbacks.RNGStateCheckpoint` also draws the same dropout masks. (``StatefulDataLoader``'s
  own shuffling draws its seed from the global generator when it is built, and its worker seed each epoch.)
* A state is applied only to the epoch it was saved in, and not when it was saved at the end of that epoch
  (``StatefulDataLoader`` restored from a complete epoch yields an empty one; Lightning resumes from an
  end-of-epoch checkpoint at the next epoch).

Under DDP, Lightning swaps in its ``DistributedSampler`` (also ordered by seed and epoch) and torchdata
fast-forwards it the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Dataset, RandomSampler, Sampler
from torchdata.stateful_dataloader import StatefulDataLoader

from ugmm_vision.checks import check_int

__all__ = ["EpochSeededSampler", "ResumableDataLoader", "loader_options"]


def loader_options(datamodule: Any, num_workers: int, *, persistent: bool = False) -> dict[str, Any]:
    """``num_workers``, ``pin_memory`` and ``persistent_workers`` for a data module's loader.

    ``pin_memory`` when the trainer the data module is attached to runs on CUDA (page-locked batches copy to the
    GPU asynchronously; on the CPU pinning only costs). ``persistent_workers`` only where asked (the validation
    loader, used every epoch) and when there are workers: training loaders start fresh workers each epoch, because
    a persistent worker's random state carries over from the previous epoch, which a run resumed mid-epoch (new
    workers) could not repeat; test sets are used once.

    Example:
        >>> loader_options(None, 2, persistent=True)
        {'num_workers': 2, 'pin_memory': False, 'persistent_workers': True}
    """
    from lightning.pytorch.accelerators import CUDAAccelerator

    trainer = getattr(datamodule, "trainer", None)
    on_cuda = isinstance(getattr(trainer, "accelerator", None), CUDAAccelerator)
    return {"num_workers": num_workers, "pin_memory": on_cuda, "persistent_workers": persistent and num_workers > 0}


class EpochSeededSampler(RandomSampler):
    """A random permutation per epoch, drawn from ``torch.Generator().manual_seed(seed + epoch)``.

    Lightning calls :meth:`set_epoch` at the start of every training epoch (as for ``DistributedSampler``).

    Args:
        data_source: the dataset (only its length is used).
        seed: base seed of the permutations.

    Example:
        >>> sampler = EpochSeededSampler(range(5), seed=0)
        >>> first = list(sampler)
        >>> first == list(sampler), sorted(first)
        (True, [0, 1, 2, 3, 4])
        >>> sampler.set_epoch(1)
        >>> list(sampler) != first
        True
    """

    def __init__(self, data_source: Any, seed: int) -> None:
        check_int("seed", seed)
        super().__init__(data_source)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(len(self.data_source), generator=generator).tolist()


class ResumableDataLoader(StatefulDataLoader):
    """``StatefulDataLoader`` whose order is seeded by ``(seed, epoch)``, resumed at the next unseen batch.

    Takes the arguments of :class:`torch.utils.data.DataLoader` plus ``seed``. With ``shuffle=True`` the order
    of epoch ``e`` is the permutation seeded by ``seed + e``; ``seed=None`` draws the seed from torch's global
    generator once, at construction (so ``seed_everything`` fixes it) — a resumed run takes it from the
    checkpoint instead.

    ``state_dict()`` records the seed, the epoch, how many batches of it were handed out, and torchdata's state
    of the pass (``"loader"``). After ``load_state_dict()`` the next pass over the loader — if it is the same
    epoch (Lightning calls ``set_epoch`` before the first batch is drawn) — continues after those batches. A
    state saved at the end of an epoch skips nothing.

    Example:
        >>> loader = ResumableDataLoader(torch.arange(10), batch_size=3, shuffle=True, seed=0)
        >>> epoch = [b.tolist() for b in loader]
        >>> partial = iter(loader)
        >>> _ = next(partial), next(partial)
        >>> state = loader.state_dict()
        >>> resumed = ResumableDataLoader(torch.arange(10), batch_size=3, shuffle=True, seed=123)
        >>> resumed.load_state_dict(state)
        >>> [b.tolist() for b in resumed] == epoch[2:]
        True
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | None = None,
        batch_sampler: Sampler | None = None,
        *args: Any,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        if sampler is not None and shuffle:
            raise ValueError("Expected `shuffle` unset when a `sampler` is given (they are mutually exclusive)")
        if batch_sampler is None and sampler is None and shuffle:
            if seed is None:
                seed = int(torch.empty((), dtype=torch.int64).random_().item())
            sampler = EpochSeededSampler(dataset, seed)
        # Worker seeds come from a generator of our own, reseeded each pass from (seed, epoch): a pass never
        # draws from the global generator, so a resumed run's random numbers follow the interrupted run's.
        self._own_generator = kwargs.get("generator") is None
        kwargs["generator"] = torch.Generator() if self._own_generator else kwargs["generator"]
        super().__init__(dataset, batch_size, None, sampler, batch_sampler, *args, **kwargs)
        self.seed = seed
        self._batches = 0  # batches handed out in the current pass
        self._pending: dict[str, Any] | None = None

    def _sampler(self) -> Any:
        return getattr(self.batch_sampler, "sampler", None) or self.sampler

    def _epoch(self) -> int | None:
        return getattr(self._sampler(), "epoch", None)

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: nothing runs before the first batch is asked for, after Lightning's set_epoch.
        start, pending, self._pending = 0, self._pending, None
        if pending is not None and pending["epoch"] == self._epoch() and 0 < pending["batches"] < len(self):
            start = pending["batches"]
            super().load_state_dict(pending.get("loader") or {})
        self._batches = start
        if self._own_generator:
            self.generator.manual_seed(((self.seed or 0) * 1_000_003 + (self._epoch() or 0)) % 2**63)
        skip = start if start and not pending.get("loader") else 0  # a state without torchdata's part: skip
        for i, batch in enumerate(super().__iter__()):
            if i < skip:
                continue
            self._batches += 1
            yield batch

    def state_dict(self) -> dict[str, Any]:
        """The seed, the epoch, the number of batches of that epoch handed out, and torchdata's pass state."""
        sampler = self._sampler()
        seed = sampler.seed if isinstance(sampler, EpochSeededSampler) else None
        # torchdata's state_dict() starts a pass (and its workers) when none is running: only ask during one.
        loader = super().state_dict() if self._iterator is not None and 0 < self._batches < len(self) else {}
        return {"seed": seed, "epoch": self._epoch(), "batches": self._batches, "loader": loader}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue from ``state_dict`` (from :meth:`state_dict`) at the next pass over the loader."""
        missing = {"seed", "epoch", "batches"} - set(state_dict)
        if missing:
            raise ValueError(
                f"Expected `state_dict` with keys seed, epoch, batches (and loader); missing {sorted(missing)}"
            )
        sampler = self._sampler()
        if isinstance(sampler, EpochSeededSampler) and state_dict["seed"] is not None:
            sampler.seed = self.seed = int(state_dict["seed"])
        if callable(getattr(sampler, "set_epoch", None)) and state_dict["epoch"] is not None:
            sampler.set_epoch(int(state_dict["epoch"]))  # Lightning sets it again before the first batch
        self._pending = dict(state_dict)
