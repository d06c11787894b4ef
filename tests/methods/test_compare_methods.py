"""``ugmm-vision compare`` with the methods: every new row and column on a tiny budget."""

import json
from pathlib import Path

import pytest

from ugmm_vision.cli import build_cli
from ugmm_vision.compare import COLUMNS

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.mark.slow
def test_compare_tiny_budget_produces_every_method_row_and_column(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    build_cli(
        [
            "compare",
            "--config",
            str(CONFIGS / "digits.yaml"),
            "--config",
            str(CONFIGS / "compare_digits.yaml"),
            "--config",
            str(CONFIGS / "compare_methods.yaml"),
            "--seeds=[0]",
            "--epochs=1",
            "--mode=frozen",  # features computed once: the runs train heads only
            "--trainer.limit_train_batches=3",
            "--methods.ensemble.init_args.members=2",
            "--methods.mc_dropout.init_args.n_samples=3",
            "--shift=false",
            # a one-layer uGMM head keeps the run short; the methods are the ones of configs/compare_methods.yaml
            '--heads={"linear": {"class_path": "ugmm_vision.heads.LinearHead"}, '
            '"ugmm": {"class_path": "ugmm_vision.heads.UGMMHead"}}',
            "--output_dir",
            "cmp",
        ]
    )
    result = json.loads((tmp_path / "cmp/compare.json").read_text())
    methods = ["mc_dropout", "ensemble", "ddu", "laplace"]
    rows = [f"{h}{suffix}" for h in ("linear", "ugmm") for suffix in ["", *(f"+{m}" for m in methods)]]
    assert list(result["summary"]) == rows
    summary = result["summary"]
    for row, stats in summary.items():
        for key in ("cp_coverage_0.1", "cp_set_size_0.1", "cp_coverage_0.05", "cp_set_size_0.05"):
            assert key in stats, (row, key)
        assert 0.0 <= stats["cp_coverage_0.05"]["mean"] <= 1.0
    for head in ("linear", "ugmm"):
        assert summary[f"{head}+mc_dropout"]["forward_passes"]["mean"] == 3
        assert summary[f"{head}+ensemble"]["members"]["mean"] == 2
        assert summary[f"{head}+ensemble"]["params"]["mean"] == 2 * summary[head]["params"]["mean"]
        for method in ("mc_dropout", "ensemble"):
            assert "ood_auroc_mi" in summary[f"{head}+{method}"]
        assert "ood_auroc_feature_density" in summary[f"{head}+ddu"]
        assert summary[head]["forward_passes"]["mean"] == summary[head]["members"]["mean"] == 1
    assert "ood_auroc_density" in summary["ugmm+ddu"]  # the uGMM head's own density beside the feature density
    reports = {r["head"]: r for r in result["reports"]}
    assert reports["ugmm+laplace"]["method"] == {"method": "laplace", "forward_passes": 1, "members": 1}
    markdown = (tmp_path / "cmp/compare.md").read_text()
    new_columns = ["ood_auroc_mi", "ood_auroc_feature_density", "cp_coverage_0.1", "cp_set_size_0.05"]
    assert all(COLUMNS[key] in markdown for key in [*new_columns, "forward_passes", "members"])
    assert "| ugmm+ensemble" in markdown
