"""Regenerate the README's figure of a trained uGMM head's mixing weights: ``docs/images/mixing_weights.png``.

Trains a small CNN (two stages, 64 features) with a uGMM head on the embedded digits (8 and 9 held out) for a few
epochs, then draws the class layer's mixing weights π (classes × features) with
:func:`ugmm_vision.report.plot_mixing_weights_heatmap`. Offline; about half a minute on 2 CPU cores::

    .venv/bin/python docs/images/make_images.py            # writes docs/images/mixing_weights.png
    .venv/bin/python docs/images/make_images.py --out /tmp  # somewhere else
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

import lightning as L

from ugmm_vision import DigitsDataModule, ImageClassifier, SmallCNN, UGMMHead
from ugmm_vision.report import plot_mixing_weights_heatmap, save_figure
from ugmm_vision.trainers import quiet_trainer

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder of the PNG (default: docs/images)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)

    L.seed_everything(0, verbose=False)
    data = DigitsDataModule(ood_classes=(8, 9))
    model = ImageClassifier(SmallCNN(in_chans=1, widths=(32, 64)), UGMMHead, num_classes=data.num_classes, head_lr=0.03)
    trainer = quiet_trainer(max_epochs=args.epochs, deterministic=True)
    trainer.fit(model, data)
    accuracy = trainer.test(model, data, verbose=False)[0]["test/acc"]

    fig = plot_mixing_weights_heatmap(model.head.layers[-1], class_names=data.class_names)
    fig.axes[0].set_title(f"Mixing weights π of the class neurons (digits, test accuracy {accuracy:.1%})")
    path = save_figure(fig, args.out / "mixing_weights.png", dpi=110)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
