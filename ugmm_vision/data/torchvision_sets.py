"""LightningDataModules over torchvision's MNIST, FashionMNIST, CIFAR-10, CIFAR-100 and SVHN, with OOD partners.

One base class, :class:`TorchvisionDataModule`, does the work; each dataset is a row of :data:`TORCHVISION_SETS`
and a three-line subclass. The real torchvision classes load the real files (``download=True`` fetches them where
there is internet). The in-distribution test split is ``"id"``; the standard OOD partner's test split
(CIFAR-10/100 ↔ SVHN, MNIST → FashionMNIST) is ``"ood/<name>"``, brought to the in-distribution images' channels
and size and normalised like them. Fashion-MNIST's standard partner is ``"digits"`` — scikit-learn's digits
resized (:mod:`ugmm_vision.data.ood_sets`; not MNIST), which exists offline; ``ood_dataset="mnist"`` still takes
MNIST where its files are. Every module also takes the offline OOD sets of
:class:`~ugmm_vision.data.VisionDataModule` (``ood_classes``, ``extra_ood``, ``ood_folders``).

On-disk layout (torchvision's): ``<root>/MNIST/raw/*-idx?-ubyte``, ``<root>/FashionMNIST/raw/…``,
``<root>/cifar-10-batches-py/``, ``<root>/cifar-100-python/``, ``<root>/{train,test}_32x32.mat`` (SVHN). MNIST and
Fashion-MNIST are also read from a flat directory of the four official files, ``.gz`` or not
(:mod:`ugmm_vision.data.idx_files`) — the layout of Debian's ``dataset-fashion-mnist``, in
``/usr/share/datasets/fashion-mnist/``, which is used when ``root`` is not given and the files are there
(install: ``apt-get update && apt-get install -y dataset-fashion-mnist``, or ``make data``).

Checksums: CIFAR and SVHN verify each file's md5 against the official release before loading; MNIST files are
checked for a valid IDX header and length (a damaged file is an error naming it). ``verify_checksums=False`` loads
re-packed or reduced CIFAR/SVHN copies through torchvision subclasses whose md5 entries are None (torchvision's own
"check existence only" value); the download archive itself is still verified.

CIFAR's batches are Python pickles: they are always read with a restricted unpickler
(:mod:`ugmm_vision.data.cifar_files`) that builds numpy arrays and plain containers only, so a crafted batch cannot
run code whether or not its checksum is verified.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from ugmm_vision.data.base import VisionDataModule
from ugmm_vision.data.idx_files import IdxImageDataset, find_idx_files
from ugmm_vision.data.ood_sets import OFFLINE_OOD_SETS
from ugmm_vision.data.torchvision_specs import SYSTEM_DATASET_DIRS, TORCHVISION_SETS, TorchvisionSet

__all__ = [
    "SYSTEM_DATASET_DIRS",
    "TORCHVISION_SETS",
    "CIFAR10DataModule",
    "CIFAR100DataModule",
    "DatasetFilesError",
    "FashionMNISTDataModule",
    "MNISTDataModule",
    "SVHNDataModule",
    "TorchvisionDataModule",
    "TorchvisionSet",
]
# TORCHVISION_SETS, TorchvisionSet and SYSTEM_DATASET_DIRS live in torchvision_specs.py; re-exported here.


class DatasetFilesError(FileNotFoundError, RuntimeError):
    """A dataset's files are missing or fail their checksum (``download=False``).

    A ``FileNotFoundError`` that names ``root``, and still the ``RuntimeError`` torchvision raises for the same case.
    """


class TorchvisionDataModule(VisionDataModule):
    """Base of the torchvision data modules; a subclass only sets ``dataset_name`` (a key of ``TORCHVISION_SETS``).

    Training and validation come from the official training split (seeded, stratified); the official test split
    is ``"id"``; the OOD partner's test split is ``"ood/<name>"``, plus the offline OOD sets asked for. Images are
    normalised with the dataset's standard statistics unless a timm config or ``mean``/``std`` say otherwise.

    Args:
        root: directory holding (or receiving) the files, in torchvision's layout (MNIST family: or a flat directory
            of the official files). None: the system package's directory when it holds the files (Fashion-MNIST,
            see :data:`SYSTEM_DATASET_DIRS`), else ``"data"``.
        download: download missing files (needs internet; present files are never fetched again).
        ood_dataset: the OOD partner: a key of ``TORCHVISION_SETS`` or an offline set (``"digits"``,
            ``"gaussian"``, ``"uniform"``, ``"constant"``), ``"default"`` for the standard partner, or None for none.
        ood_root: directory of the OOD partner's files (None: ``root``, then the partner's system directory).
        verify_checksums: verify CIFAR/SVHN files' md5 against the official release (False for re-packed or
            reduced copies; CIFAR's pickles are read by a restricted unpickler either way, so no file runs code).
        batch_size: samples per batch for every loader.
        val_fraction: fraction of the training split held out for validation.
        seed: seed of the train/validation split, the shift corruptions and the noise OOD sets.
        num_workers: DataLoader workers.
        image_size: side length images are resized to (None: the dataset's own); ignored with a timm config.
        num_channels: 1 or 3 (None: the dataset's own, or timm's ``input_size[0]``).
        augment: light training augmentation without timm (padded random crop, flips where labels allow).
        timm_data_config: a timm data config (e.g. ``TimmBackbone.data_config``) to build timm's transforms.
        mean: normalisation mean per channel (None: timm's config, else the dataset's standard value).
        std: normalisation standard deviation per channel (None: as ``mean``).
        ood_classes: labels held out of training, validation and ``"id"``; their test images are
            ``"ood/held_out"``.
        extra_ood: more offline OOD sets: ``"digits"``, ``"gaussian"``, ``"uniform"``, ``"constant"``.
        ood_folders: folders of images (``ImageFolder`` layout or flat), each ``"ood/<folder name>"``.
    """

    dataset_name: ClassVar[str] = ""

    def __init__(
        self,
        root: str | Path | None = None,
        download: bool = True,
        ood_dataset: str | None = "default",
        ood_root: str | Path | None = None,
        verify_checksums: bool = True,
        batch_size: int = 128,
        val_fraction: float = 0.1,
        seed: int = 0,
        num_workers: int = 0,
        image_size: int | None = None,
        num_channels: int | None = None,
        augment: bool = False,
        timm_data_config: dict[str, Any] | None = None,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        ood_classes: Sequence[int] = (),
        extra_ood: Sequence[str] = (),
        ood_folders: Sequence[str] = (),
    ) -> None:
        if self.dataset_name not in TORCHVISION_SETS:
            raise ValueError(
                f"Expected a subclass with `dataset_name` in {list(TORCHVISION_SETS)}, got {self.dataset_name!r}"
            )
        self.spec = TORCHVISION_SETS[self.dataset_name]
        ood_name = self.spec.ood_partner if ood_dataset == "default" else ood_dataset
        partners = [n for n in (*TORCHVISION_SETS, *OFFLINE_OOD_SETS) if n != self.dataset_name]
        if ood_name is not None and ood_name not in partners:
            raise ValueError(f"Expected `ood_dataset` in {['default', *partners, None]}, got {ood_dataset!r}")
        self.native_channels, self.native_size, self.hflip = self.spec.channels, self.spec.size, self.spec.hflip
        self.default_mean, self.default_std = self.spec.mean, self.spec.std
        extra = (extra_ood,) if isinstance(extra_ood, str) else tuple(extra_ood)
        if ood_name in OFFLINE_OOD_SETS and ood_name not in extra:
            extra = (ood_name, *extra)  # the partner is an offline set: served first, as "ood/<name>"
        super().__init__(
            batch_size=batch_size,
            val_fraction=val_fraction,
            seed=seed,
            num_workers=num_workers,
            image_size=image_size,
            num_channels=num_channels,
            augment=augment,
            timm_data_config=timm_data_config,
            mean=mean,
            std=std,
            ood_classes=ood_classes,
            extra_ood=extra,
            ood_folders=ood_folders,
        )
        self._label_map(self.spec.num_classes)  # checks `ood_classes` against the class count now
        self.save_hyperparameters()
        self.given_root = None if root is None else Path(root)
        self.root = self._roots(self.dataset_name, self.given_root)[0]
        self.download = download
        self.ood_dataset = ood_name
        self.ood_root = Path(ood_root) if ood_root is not None else None  # None: root, then the system dir
        self.verify_checksums = verify_checksums
        self._class_names: list[str] | None = None

    @property
    def num_classes(self) -> int:
        """Number of in-distribution classes (10, or 100 for CIFAR-100, less the held-out ones)."""
        return self.spec.num_classes - len(self.ood_classes)

    def _num_labels(self) -> int:
        return self.spec.num_classes

    @property
    def class_names(self) -> list[str]:
        """Class names as torchvision gives them (CIFAR's are read from its meta file by ``setup``), held-out
        classes left out."""
        names = self._class_names
        if names is None:
            names = getattr(self.spec.dataset_class, "classes", None)  # a class attribute for the MNIST family
        if names is None and self.dataset_name == "svhn":
            names = [str(d) for d in range(10)]
        if names is None:
            raise RuntimeError(f"The class names of {self.dataset_name} are read from its files: call setup() first")
        return [n for i, n in enumerate(names) if i not in self.ood_classes]

    @staticmethod
    def _roots(name: str, root: Path | None, with_system: bool = False) -> list[Path]:
        """Directories to look in for ``name``'s files, in order; the first receives downloads.

        ``root`` (default ``data``), preceded by the system package's directory when ``root`` is None and that holds
        the files, or followed by it when ``with_system`` (an OOD partner looked for beside the data's own root).
        """
        roots = [Path(root) if root is not None else Path("data")]
        system = SYSTEM_DATASET_DIRS.get(name, (None, ""))[0]
        folder = TORCHVISION_SETS[name].idx_folder
        if system is not None and folder and (root is None or with_system) and find_idx_files(system, folder):
            roots = [system, *roots] if root is None else [*roots, system]
        return roots

    def prepare_data(self) -> None:
        """Download missing files; Lightning calls this on one process per node before ``setup``.

        Under DDP the other processes then find the files present and fetch nothing.
        """
        if self.download:
            for split in ("train", "test"):
                self._open(self.dataset_name, self._main_roots(), split)
            if self.ood_dataset in TORCHVISION_SETS:
                self._open(self.ood_dataset, self._ood_roots(), "test")

    def _main_roots(self) -> list[Path]:
        return self._roots(self.dataset_name, self.given_root)

    def _ood_roots(self) -> list[Path]:
        if self.ood_root is not None:
            return self._roots(self.ood_dataset, self.ood_root)
        return self._roots(self.ood_dataset, self.given_root, with_system=True)

    def _missing(self, name: str, roots: list[Path], err: Exception | None) -> DatasetFilesError:
        spec = TORCHVISION_SETS[name]
        looked = " or ".join(repr(str(r)) for r in roots)
        layout = (
            f" ({spec.idx_folder}/raw/) or flat (the four official files, train-images-idx3-ubyte.gz …, .gz or not)"
            if spec.idx_folder
            else " (see this module's docstring)"
        )
        system, install = SYSTEM_DATASET_DIRS.get(name, (None, ""))
        hint = f"; install them with `{install}` (files in {system}/)" if install else ""
        why = f" ({type(err).__name__}: {err})" if err is not None else ""
        return DatasetFilesError(
            f"Expected the {name} files under `root`={looked} in torchvision's layout{layout}, found none or a damaged "
            f"copy{hint}; or pass `root` and download=True where there is internet{why}"
        )

    def _open(self, name: str, roots: list[Path], split: str) -> Any:
        spec = TORCHVISION_SETS[name]
        if spec.idx_folder is not None:
            return self._open_idx(name, roots, split)
        root = roots[0]
        dataset_class = spec.dataset_class if self.verify_checksums else spec.unchecked_class
        split_arg = {"train": split == "train"} if spec.split_keyword == "train" else {"split": split}
        try:
            return dataset_class(str(root), download=self.download, **split_arg)
        except RuntimeError as err:  # torchvision: "Dataset not found or corrupted. You can use download=True …"
            if self.download or "not found" not in str(err):
                raise
            raise self._missing(name, [root], err) from err

    def _open_idx(self, name: str, roots: list[Path], split: str) -> IdxImageDataset:
        """The MNIST family: the first of ``roots`` holding the four files, torchvision's or a flat layout."""
        spec = TORCHVISION_SETS[name]
        found = next((f for r in roots if (f := find_idx_files(r, spec.idx_folder)) is not None), None)
        if found is None and self.download:
            try:  # torchvision's download (verifies the archives' md5) into <root>/<folder>/raw/
                spec.dataset_class(str(roots[0]), download=True, train=split == "train")
            except Exception as err:  # no internet: URLError wrapped in RuntimeError, or an OSError
                raise self._missing(name, roots, err) from err
            found = find_idx_files(roots[0], spec.idx_folder)
        if found is None:
            raise self._missing(name, roots, None)
        return IdxImageDataset.from_files(*found[split], classes=list(spec.dataset_class.classes))

    def _load_split(self, split: str) -> Any:
        dataset = self._open(self.dataset_name, self._main_roots(), split)
        if getattr(dataset, "classes", None) is not None:
            self._class_names = list(dataset.classes)
        return dataset

    def _load_ood(self) -> dict[str, Any]:
        if self.ood_dataset not in TORCHVISION_SETS:  # None, or an offline set (built by the base class)
            return {}
        return {f"ood/{self.ood_dataset}": self._open(self.ood_dataset, self._ood_roots(), "test")}


class MNISTDataModule(TorchvisionDataModule):
    """MNIST (28×28 grey digits, 10 classes); OOD partner FashionMNIST. See :class:`TorchvisionDataModule`.

    Example:
        >>> dm = MNISTDataModule(root="data", ood_dataset="default")
        >>> dm.num_classes, dm.mean, dm.ood_dataset
        (10, (0.1307,), 'fashion_mnist')
    """

    dataset_name = "mnist"


class FashionMNISTDataModule(TorchvisionDataModule):
    """Fashion-MNIST (28×28 grey clothing, 10 classes); OOD partner scikit-learn's digits resized (``"digits"``,
    offline; not MNIST — ``ood_dataset="mnist"`` takes MNIST's files). See :class:`TorchvisionDataModule`.

    Without ``root``, the files of Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist/``) are
    used when installed.

    Example:
        >>> dm = FashionMNISTDataModule(extra_ood=["gaussian"], ood_classes=[9])
        >>> dm.class_names[:2], dm.num_classes, dm.ood_dataset, dm.extra_ood
        (['T-shirt/top', 'Trouser'], 9, 'digits', ('digits', 'gaussian'))
    """

    dataset_name = "fashion_mnist"


class CIFAR10DataModule(TorchvisionDataModule):
    """CIFAR-10 (32×32 colour, 10 classes); OOD partner SVHN. See :class:`TorchvisionDataModule`.

    Example:
        >>> dm = CIFAR10DataModule(root="data", num_channels=1)
        >>> dm.num_classes, dm.ood_dataset, len(dm.mean)
        (10, 'svhn', 1)
    """

    dataset_name = "cifar10"


class CIFAR100DataModule(TorchvisionDataModule):
    """CIFAR-100 (32×32 colour, 100 fine classes); OOD partner SVHN. See :class:`TorchvisionDataModule`.

    Example:
        >>> CIFAR100DataModule(root="data").num_classes
        100
    """

    dataset_name = "cifar100"


class SVHNDataModule(TorchvisionDataModule):
    """SVHN (32×32 colour house numbers, 10 classes, label 0 = digit 0); OOD partner CIFAR-10.

    See :class:`TorchvisionDataModule`. The ``extra`` split is not used.

    Example:
        >>> SVHNDataModule(root="data", ood_dataset=None).class_names[:3]
        ['0', '1', '2']
    """

    dataset_name = "svhn"
