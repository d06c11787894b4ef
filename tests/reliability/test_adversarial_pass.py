"""More of the same kinds (second pass, issue 17): what our own adversarial pass tried after the issue's list.

"before:" says what the code did before the fix (found by running or reading it); a row marked "already so" was
right before this pass and is kept as a regression test.
"""

import lightning
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from ugmm_vision.callbacks import CSVPredictionWriter
from ugmm_vision.cli import build_cli
from ugmm_vision.compare import writer as compare_writer
from ugmm_vision.data import DigitsDataModule
from ugmm_vision.export import export_trained
from ugmm_vision.report.evaluate import evaluate_model

# These tests write the small, fast TorchScript format on purpose; its deprecation warning is not what they test.
pytestmark = pytest.mark.filterwarnings("ignore:The 'torchscript' export format is deprecated:FutureWarning")

DIGITS = str(__import__("pathlib").Path(__file__).resolve().parents[2] / "configs" / "digits.yaml")


def test_prediction_class_names_of_the_wrong_length(make_model, make_trainer, tmp_path):
    """CSVPredictionWriter(class_names=[2 names]) for an 8-class model → ValueError naming `class_names` and both
    counts; no file (before: IndexError "list index out of range" for the first image predicted as class ≥ 2)."""
    writer = CSVPredictionWriter(tmp_path / "p.csv", class_names=["cat", "dog"])
    with pytest.raises(ValueError, match=r"`class_names` with one name per class of the model \(8\), got 2"):
        make_trainer(callbacks=[writer]).predict(make_model(), DataLoader(TensorDataset(torch.rand(4, 1, 8, 8))))
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("subcommand", ["test", "predict"])
def test_ckpt_path_last_without_a_last_checkpoint(in_tmp, subcommand):
    """`test`/`predict --ckpt_path last` with no last checkpoint → FileNotFoundError naming `ckpt_path` and the
    folder searched, before any batch (before: Lightning's warning, then results of the untrained model)."""
    with pytest.raises(FileNotFoundError, match=r"`ckpt_path`='last'.*outputs/digits/checkpoints"):
        build_cli([subcommand, "--config", DIGITS, "--ckpt_path", "last", "--trainer.logger=false"])


@pytest.mark.slow
def test_evaluate_of_a_checkpoint_with_nan_weights(make_model, make_trainer, tmp_path):
    """evaluate of a checkpoint with a NaN BatchNorm running_var over an existing report → ValueError naming the
    set and the checkpoint; the previous report is byte-identical (before: exit 0 with `nll: null`)."""
    torch.manual_seed(0)
    model, data = make_model(), DigitsDataModule(ood_classes=(8, 9), batch_size=512)
    kwargs = dict(output_dir=tmp_path / "report", shift=False, temperature_scaling=False)
    evaluate_model(make_trainer(), model, data, **kwargs)
    before = {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()}
    state = model.state_dict()
    key = next(k for k in state if k.endswith("running_var"))
    state[key][0] = float("nan")
    ckpt = tmp_path / "nan.ckpt"
    torch.save({"state_dict": state, "pytorch-lightning_version": lightning.__version__}, ckpt)
    with pytest.raises(ValueError, match=r"finite logits.*in 'id'") as info:
        evaluate_model(make_trainer(), make_model(), data, ckpt_path=str(ckpt), **kwargs)
    assert str(ckpt) in str(info.value)
    assert {p.name: p.read_bytes() for p in (tmp_path / "report").iterdir()} == before


def test_export_input_shape_that_does_not_fit(make_model, make_trainer, tmp_path):
    """export with `input_shape` [3, 8, 8] for a 1-channel backbone → ValueError naming `input_shape` and the
    backbone's in_chans (before: a raw convolution error)."""
    with pytest.raises(ValueError, match=r"`input_shape` \[3, 8, 8\] to fit the model.*in_chans=1"):
        export_trained(
            make_trainer(), make_model(), None, None, "torchscript", tmp_path / "m.pt", input_shape=[3, 8, 8]
        )


def test_export_output_that_is_a_folder(make_model, make_trainer, tmp_path):
    """export with `output` an existing folder → ValueError naming `output` before the model is traced."""
    with pytest.raises(ValueError, match=r"`output` to be a file path.*which is a folder"):
        export_trained(make_trainer(), make_model(), None, None, "torchscript", tmp_path, input_shape=[1, 8, 8])


def test_compare_output_dir_checked_before_training(tmp_path, monkeypatch):
    """compare with `output_dir` an existing file → ValueError naming `output_dir` before any head is trained
    (before: after the whole comparison)."""
    trained = []
    monkeypatch.setattr(compare_writer, "run_comparison", lambda *a, **k: trained.append(1) or [])
    target = tmp_path / "compare"
    target.write_text("a file")
    with pytest.raises(ValueError, match="`output_dir`") as info:
        compare_writer.compare_heads(None, None, {}, output_dir=target)
    assert str(target) in str(info.value) and trained == []


def test_prediction_csv_in_a_folder_that_is_a_file(make_model, make_trainer, tmp_path):
    """CSVPredictionWriter(output_path=<file>/predictions.csv) → ValueError naming the path at setup, before any
    batch (before: NotADirectoryError after the whole predict run)."""
    (tmp_path / "taken").write_text("a file")
    writer = CSVPredictionWriter(tmp_path / "taken" / "predictions.csv")
    with pytest.raises(ValueError, match=r"`output_path's folder`.*which is an existing file"):
        make_trainer(callbacks=[writer]).predict(make_model(), DataLoader(TensorDataset(torch.rand(2, 1, 8, 8))))


def test_evaluate_ckpt_path_that_is_a_folder(make_model, make_trainer, tmp_path):
    """evaluate with `ckpt_path` a folder → FileNotFoundError naming `ckpt_path` and the folder (already so)."""
    with pytest.raises(FileNotFoundError, match="`ckpt_path`") as info:
        evaluate_model(make_trainer(), make_model(), DigitsDataModule(), ckpt_path=str(tmp_path), shift=False)
    assert str(tmp_path) in str(info.value)


def test_image_folder_skip_warning_lists_every_file(tmp_path):
    """ImageFolderDataModule(bad_images="skip") with 5 unreadable training files → the warning names all 5, so the
    shorter set is never silent (before: the first 3, "e.g.")."""
    from PIL import Image

    from ugmm_vision.data import ImageFolderDataModule

    bad = []
    for split in ("train", "test"):
        for name in ("a", "b"):
            folder = tmp_path / split / name
            folder.mkdir(parents=True)
            for i in range(4):
                Image.new("L", (8, 8), 20 * i).save(folder / f"{i}.png")
    for i in range(5):
        path = tmp_path / "train" / "ab"[i % 2] / f"bad_{i}.png"
        path.write_bytes(b"not a png")
        bad.append(path)
    data = ImageFolderDataModule(tmp_path, num_channels=1, bad_images="skip")
    with pytest.warns(UserWarning, match="Skipped 5 unreadable") as record:
        data.setup("fit")
    message = next(str(w.message) for w in record if "Skipped 5" in str(w.message))
    assert all(str(path) in message for path in bad)
    assert len(data.train_set) + len(data.val_set) == 8


def test_bins_checked_before_the_evaluation(make_model, make_trainer, tmp_path, monkeypatch):
    """evaluate or compare with `n_bins`=0 → ValueError naming `n_bins` before a batch is predicted or a head trained
    (before: evaluate failed only when building the report, after every prediction)."""
    predicted = []
    model = make_model()
    model.predict_step = lambda *args, **kwargs: predicted.append(1)
    with pytest.raises(ValueError, match="`n_bins`"):
        evaluate_model(make_trainer(), model, DigitsDataModule(), output_dir=tmp_path / "r", n_bins=0)
    trained = []
    monkeypatch.setattr(compare_writer, "run_comparison", lambda *a, **k: trained.append(1) or [])
    with pytest.raises(ValueError, match="`n_bins`"):
        compare_writer.compare_heads(None, None, {}, output_dir=tmp_path / "c", n_bins=0)
    assert predicted == [] and trained == []


def test_evaluation_set_left_empty(make_model, make_trainer, tmp_path):
    """evaluate where every file of the `ood/` folder was skipped as unreadable (bad_images="skip") → ValueError
    naming the empty set (before: torch.cat's "expected a non-empty list of Tensors")."""
    from PIL import Image

    from ugmm_vision.data import ImageFolderDataModule

    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(3):
                Image.new("L", (8, 8), 40 * i).save(tmp_path / split / name / f"{i}.png")
    (tmp_path / "ood" / "x").mkdir(parents=True)
    (tmp_path / "ood" / "x" / "0.png").write_bytes(b"not a png")
    data = ImageFolderDataModule(tmp_path, num_channels=1, bad_images="skip", batch_size=4)
    with pytest.warns(UserWarning, match="Skipped 1"), pytest.raises(ValueError, match=r"none in \['ood'\]"):
        evaluate_model(make_trainer(), make_model(num_classes=2), data, output_dir=tmp_path / "r", shift=False)
