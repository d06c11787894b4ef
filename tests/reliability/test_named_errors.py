"""Errors that name what is wrong (second pass, issue 17): the argument or the file, and before the work starts.

Before this pass each of these ended in a raw library traceback or a misleading message (jsonargparse's
"Unexpected config", a state-dict error, IsADirectoryError, a failure inside ``torch.stack`` mid-epoch, PIL's
"image file is truncated", a conv dtype error), or in a silently changed setting. Verdict per row: fixed.
"""

import csv
import errno
from pathlib import Path

import lightning
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision import destinations
from ugmm_vision.callbacks import CSVPredictionWriter
from ugmm_vision.cli import build_cli
from ugmm_vision.data import DigitsDataModule, ImageFolderDataModule, UnlabelledImageFolderDataModule
from ugmm_vision.data.unlabelled import ImageFileDataset
from ugmm_vision.export import export_trained
from ugmm_vision.report.evaluate import evaluate_model

# These tests write the small, fast TorchScript format on purpose; its deprecation warning is not what they test.
pytestmark = pytest.mark.filterwarnings("ignore:The 'torchscript' export format is deprecated:FutureWarning")

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
DIGITS = str(CONFIGS / "digits.yaml")


@pytest.mark.parametrize(
    "content",
    ["", "# only a comment\n", "- trainer\n- model\n", "just a string\n"],
    ids=["empty", "comment-only", "list", "scalar"],
)
def test_override_yaml_that_is_not_a_mapping(in_tmp, content):
    """An override --config that is empty or list/scalar-shaped → ValueError naming the file and saying a YAML
    mapping was expected (before: jsonargparse's "Unexpected config")."""
    override = in_tmp / "override.yaml"
    override.write_text(content)
    with pytest.raises(ValueError, match="YAML mapping") as info:
        build_cli(["fit", "--config", DIGITS, "--config", str(override), "--trainer.fast_dev_run=true"])
    assert str(override) in str(info.value)


def test_override_yaml_that_does_not_parse(in_tmp):
    """An override --config with a YAML syntax error → ValueError naming the file and the parse error."""
    override = in_tmp / "broken.yaml"
    override.write_text("trainer:\n  max_epochs: [1\n")
    with pytest.raises(ValueError, match="to be YAML") as info:
        build_cli(["fit", f"--config={DIGITS}", f"--config={override}"])
    assert str(override) in str(info.value)


@pytest.mark.slow
def test_explicit_num_classes_contradicting_the_data(in_tmp):
    """`--model.init_args.num_classes=5` on digits (8 classes with the default OOD split) → ValueError naming
    `model.init_args.num_classes` and both counts (before: silently replaced by the data's 8)."""
    with pytest.raises(ValueError, match=r"`model.init_args.num_classes`.*got 5.*num_classes is 8"):
        build_cli(["fit", "--config", DIGITS, "--model.init_args.num_classes=5", "--trainer.fast_dev_run=true"])


def _digits_checkpoint(folder: Path, config_args: list[str]) -> Path:
    """A Lightning checkpoint of the model a config builds (its state_dict and version)."""
    cli = build_cli(["validate", *config_args, "--trainer.limit_val_batches=0", "--trainer.logger=false"])
    path = folder / "model.ckpt"
    torch.save({"state_dict": cli.model.state_dict(), "pytorch-lightning_version": lightning.__version__}, path)
    return path


@pytest.mark.slow
def test_export_checkpoint_of_another_head(in_tmp):
    """`export --ckpt_path <a linear-head checkpoint>` with the uGMM config → ValueError naming `ckpt_path`, the
    file and the missing tensors (before: a raw state-dict error); nothing is exported, the file is unchanged."""
    ckpt = _digits_checkpoint(in_tmp, ["--config", DIGITS, "--config", str(CONFIGS / "digits_linear.yaml")])
    before = ckpt.read_bytes()
    output = in_tmp / "model.pt"
    with pytest.raises(ValueError, match=r"`ckpt_path`.*lacks") as info:
        build_cli(
            ["export", "--config", DIGITS, "--ckpt_path", str(ckpt), "--format=torchscript", f"--output={output}"]
        )
    assert str(ckpt) in str(info.value) and ckpt.read_bytes() == before and not output.exists()


def _export_cli(folder: Path):
    """A CLI object holding the digits trainer, model and data (nothing run)."""
    return build_cli(["validate", "--config", DIGITS, "--trainer.limit_val_batches=0", "--trainer.logger=false"])


@pytest.mark.slow
def test_export_last_is_resolved_like_fit(in_tmp):
    """`export --ckpt_path last` → the newest last*.ckpt of the config's ModelCheckpoint folder is exported, as
    fit/test/predict resolve it (before: "not found"); with none there → FileNotFoundError naming `ckpt_path` and
    the folder searched."""
    cli = _export_cli(in_tmp)
    folder = Path(cli.trainer.checkpoint_callback.dirpath)
    data = cli.datamodule
    with pytest.raises(FileNotFoundError, match=r"`ckpt_path`='last'") as info:
        export_trained(cli.trainer, cli.model, data, "last", "torchscript", in_tmp / "a.pt")
    assert str(folder) in str(info.value)

    state = {k: v + 0.5 if v.is_floating_point() else v for k, v in cli.model.state_dict().items()}
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "pytorch-lightning_version": lightning.__version__}, folder / "last.ckpt")
    info = export_trained(cli.trainer, cli.model, data, "last", "torchscript", in_tmp / "b.pt")
    assert info["ckpt_path"] == str(folder / "last.ckpt")
    torch.testing.assert_close(cli.model.state_dict()["head.layers.0.mu"], state["head.layers.0.mu"])


def test_export_checkpoint_path_is_a_folder(make_model, make_trainer, tmp_path):
    """`export --ckpt_path <a folder>` → ValueError naming `ckpt_path` and the folder (before: IsADirectoryError)."""
    with pytest.raises(ValueError, match=r"`ckpt_path`.*which is a folder") as info:
        export_trained(make_trainer(), make_model(), None, str(tmp_path), "torchscript", tmp_path / "m.pt")
    assert str(tmp_path) in str(info.value)


@pytest.mark.parametrize("temperature", [0, -1.0, float("inf"), float("nan")])
def test_export_temperature_not_positive(make_model, make_trainer, tmp_path, temperature):
    """`export --temperature 0` (or negative, inf, NaN) → ValueError naming `temperature`, nothing written
    (before: 0 silently exported with T = 1)."""
    output = tmp_path / "m.pt"
    with pytest.raises(ValueError, match="`temperature`"):
        export_trained(make_trainer(), make_model(), DigitsDataModule(), None, "torchscript", output, temperature)
    assert not output.exists()


class _PredictCounter(lightning.Callback):
    def __init__(self):
        self.batches = 0

    def on_predict_batch_start(self, *args, **kwargs):
        self.batches += 1


@pytest.mark.parametrize("where", ["existing-file", "read-only"])
def test_evaluate_output_dir_checked_before_the_evaluation(make_model, make_trainer, tmp_path, monkeypatch, where):
    """evaluate with `output_dir` an existing file, or a folder on a read-only file system → ValueError naming
    `output_dir` and the path before a single batch is predicted (before: after the whole evaluation)."""
    output_dir = tmp_path / "report"
    if where == "existing-file":
        output_dir.write_text("not a folder")
    else:  # as root, permissions do not stop writes: the file system's answer is simulated

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(destinations.tempfile, "mkstemp", read_only)
    counter = _PredictCounter()
    with pytest.raises(ValueError, match="`output_dir`") as info:
        evaluate_model(make_trainer(callbacks=[counter]), make_model(), DigitsDataModule(), output_dir=output_dir)
    assert str(output_dir) in str(info.value) and counter.batches == 0


def _save_images(folder: Path, sizes: list[tuple[int, int]]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, size in enumerate(sizes):
        paths.append(folder / f"img_{i}.png")
        Image.new("L", size, 30 * i).save(paths[-1])
    return paths


def test_mixed_image_sizes_without_image_size(tmp_path):
    """Images of two sizes and no `image_size` (image folder or predict folder) → ValueError at setup naming
    `image_size` and a file of each size (before: a torch.stack error mid-epoch)."""
    for split in ("train", "test"):
        for name, size in (("a", (8, 8)), ("b", (12, 10))):
            _save_images(tmp_path / "data" / split / name, [size, size])
    with pytest.raises(ValueError, match=r"`image_size`.*8×8.*12×10") as info:
        ImageFolderDataModule(tmp_path / "data", num_channels=1).setup("fit")
    assert str(tmp_path / "data" / "train") in str(info.value)

    paths = _save_images(tmp_path / "flat", [(8, 8), (8, 8), (9, 8)])
    with pytest.raises(ValueError, match=r"`image_size`") as info:
        UnlabelledImageFolderDataModule(tmp_path / "flat", num_classes=2, num_channels=1).setup("predict")
    assert str(paths[2]) in str(info.value)
    UnlabelledImageFolderDataModule(tmp_path / "flat", num_classes=2, image_size=8).setup("predict")  # resized: fine


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_truncated_png_in_a_predict_folder_is_named(tmp_path):
    """A truncated PNG in a predict folder → ValueError at setup naming the file and the `bad_images` option
    (before: PIL's "image file is truncated" mid-run, no file name)."""
    paths = _save_images(tmp_path / "flat", [(8, 8)] * 4)
    _truncate(paths[2])
    with pytest.raises(ValueError, match="`bad_images`") as info:
        UnlabelledImageFolderDataModule(tmp_path / "flat", num_classes=2, num_channels=1).setup("predict")
    assert str(paths[2]) in str(info.value)


def test_bad_predict_files_skipped_with_a_warning_listing_them(make_model, make_trainer, tmp_path):
    """bad_images="skip" with two truncated PNGs → a warning listing both files; the CSV has a row for every other
    image and none for them."""
    paths = _save_images(tmp_path / "flat", [(8, 8)] * 5)
    for bad in (paths[1], paths[3]):
        _truncate(bad)
    data = UnlabelledImageFolderDataModule(tmp_path / "flat", num_classes=8, num_channels=1, bad_images="skip")
    with pytest.warns(UserWarning, match="Skipped 2 unreadable") as record:
        data.setup("predict")
    message = str(record[0].message)
    assert str(paths[1]) in message and str(paths[3]) in message
    writer = CSVPredictionWriter(tmp_path / "out.csv")
    make_trainer(callbacks=[writer]).predict(make_model(), datamodule=data, return_predictions=False)
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert [r["path"] for r in rows] == [str(p) for p in (paths[0], paths[2], paths[4])]


def test_image_failing_to_decode_in_a_predict_folder_is_named(tmp_path):
    """A JPEG truncated inside its pixel data (passes the header check) → OSError naming the file when loaded."""
    path = tmp_path / "broken.jpg"
    Image.effect_noise((64, 64), 50).convert("L").save(path, quality=95)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    dataset = ImageFileDataset([path], lambda image: image)
    with pytest.raises(OSError, match=r"broken\.jpg"):
        dataset[0].load()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_predict_step_converts_other_float_dtypes(make_model, dtype):
    """float64, float16 or bfloat16 images to predict_step of a float32 model → converted, logits equal the
    float32 images' (before: a raw "Input type (double) and bias type (float)" error)."""
    model = make_model().eval()
    images = torch.rand(3, 1, 8, 8).to(dtype)
    with torch.no_grad():
        got = model.predict_step(images, 0)["logits"]
        expected = model.predict_step(images.float(), 0)["logits"]
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)


def test_images_beyond_the_model_dtype_range(make_model):
    """float64 images with values beyond float32's range (1e300) → ValueError naming `images`, not Inf logits."""
    with pytest.raises(ValueError, match="`images`"):
        make_model().eval().predict_step(torch.full((2, 1, 8, 8), 1e300, dtype=torch.float64), 0)


def test_predict_loader_of_float64_images(make_model, make_trainer):
    """Trainer.predict over a loader of float64 images → logits for every image (the conversion also covers the
    Lightning loop)."""
    loader = DataLoader(TensorDataset(torch.rand(5, 1, 8, 8, dtype=torch.float64)), batch_size=2)
    out = make_trainer().predict(make_model(), loader)
    assert sum(len(batch["logits"]) for batch in out) == 5
