"""``ugmm-vision evaluate --method …`` writes the report with the method's rows."""

import json
import shutil
from pathlib import Path

import pytest

from ugmm_vision.cli import build_cli

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fit")
    paths = {}
    for name, extra in (("ugmm", []), ("linear", ["--config", str(CONFIGS / "digits_linear.yaml")])):
        root = folder / name
        root.mkdir()
        with pytest.MonkeyPatch.context() as patch:
            patch.chdir(root)  # the configs' checkpoint folders are relative: outputs/<job>/checkpoints
            build_cli(
                [
                    "fit",
                    "--config",
                    str(CONFIGS / "digits.yaml"),
                    *extra,
                    "--trainer.max_epochs=1",
                    "--trainer.limit_train_batches=5",
                    "--trainer.enable_progress_bar=false",
                ]
            )
        paths[name] = next(root.glob("outputs/*/checkpoints/best.ckpt"))
    shutil.copy(paths["ugmm"], folder / "member1.ckpt")  # a second member (identical weights suffice here)
    paths["member1"] = folder / "member1.ckpt"
    return paths


@pytest.mark.slow
@pytest.mark.parametrize(
    ("head", "method", "scores", "cost"),
    [
        ("ugmm", ["--method=ugmm_vision.methods.MCDropout", "--method.n_samples=3"], {"neg_disagreement"}, [3, 1]),
        ("ugmm", ["--method=ugmm_vision.methods.FeatureDensity"], {"feature_density", "density_logsumexp"}, [1, 1]),
        ("linear", ["--method=ugmm_vision.methods.LastLayerLaplace"], {"msp"}, [1, 1]),
        ("ugmm", ["--method=ugmm_vision.methods.DeepEnsemble", "--method.checkpoints=[CKPT, MEMBER1]"], set(), [2, 2]),
    ],
)
def test_evaluate_with_a_method_writes_its_rows(tmp_path, monkeypatch, checkpoints, head, method, scores, cost):
    monkeypatch.chdir(tmp_path)
    config = ["--config", str(CONFIGS / "digits.yaml")]
    if head == "linear":
        config += ["--config", str(CONFIGS / "digits_linear.yaml")]
    method = [a.replace("CKPT", str(checkpoints[head])).replace("MEMBER1", str(checkpoints["member1"])) for a in method]
    build_cli(
        [
            "evaluate",
            *config,
            "--ckpt_path",
            str(checkpoints[head]),
            "--output_dir",
            "report",
            "--shift=false",
            "--trainer.enable_progress_bar=false",
            *method,
        ]
    )
    report = json.loads((tmp_path / "report/report.json").read_text())
    name = report["method"]["method"]
    assert [report["method"]["forward_passes"], report["method"]["members"]] == cost
    if name in ("mc_dropout", "ensemble"):
        scores = scores | {"neg_mutual_information", "neg_disagreement"}
    assert scores <= set(report["ood"]["ood"])
    for level in ("alpha=0.1", "alpha=0.05"):
        assert 0.0 <= report["conformal"][level]["coverage"] <= 1.0
        assert report["conformal"][level]["mean_set_size"] >= 0.0
    markdown = (tmp_path / "report/report.md").read_text()
    assert f"method {name}: forward passes / members" in markdown
    assert "conformal coverage (α=0.05)" in markdown and "## Conformal prediction sets (APS" in markdown
