"""A training recipe, checked before TensorFlow is imported: a wrong backbone name or weights
file fails in a fraction of a second with a one-line error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from facelabel.errors import FacelabelError
from trainer.model import BACKBONES, PORTED

LOW_RES_SCALE = (0.4, 0.75)  # --low-res: side of the shrunk face, as a fraction of the crop's


class RecipeError(FacelabelError):
    """A recipe that cannot be trained; ``str()`` says why."""


@dataclasses.dataclass(frozen=True)
class Recipe:
    backbone: str = "mobilenet"
    weights: str | None = "imagenet"  # "imagenet", None (random), or a weights file
    alpha: float = 0.25
    epochs: int = 40
    lr: float = 1e-4
    fine_tune: bool = False
    fine_tune_epochs: int = 10
    fine_tune_lr: float = 1e-5
    unfreeze_fraction: float = 1.0
    batch_size: int = 32
    patience: int = 5
    fixed_epochs: bool = False  # every epoch runs, the last weights are kept: val chooses nothing
    positive_weight_cap: float = 10.0
    seed: int = 0
    frozen_below: str | None = None  # FaceNet: layers up to this one stay frozen, their outputs cached
    float16: bool = False  # store the weights at half precision (and start from them rounded)
    steps_per_epoch: int | None = None  # batches per epoch, the data repeated (None: one pass)
    ema_momentum: float | None = None  # each phase ends on Adam's moving average of the weights
    low_res: float | None = None  # probability that a training face is shrunk and scaled back up
    label_smoothing: float = 0.0  # each target pulled this far toward 0.5 (CelebA's labels are noisy)
    focal_gamma: float = 0.0  # focal loss: faces already classified well weigh (1 - p)**gamma as much

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise RecipeError(f"unknown backbone {self.backbone!r}; choose from {', '.join(BACKBONES)}")
        if self.backbone == "facenet" and self.weights in (None, "imagenet"):
            raise RecipeError(
                "facenet builds from FaceNet's own file: pass --weights facenet_keras.h5 "
                "(`make build/weights/facenet_keras.h5` downloads it)"
            )
        if self.ema_momentum is not None and not 0 < self.ema_momentum < 1:
            raise RecipeError(f"--ema must be between 0 and 1 (exclusive), not {self.ema_momentum}")
        if self.low_res is not None and not 0 < self.low_res <= 1:
            raise RecipeError(f"--low-res must be a probability above 0, not {self.low_res}")
        if not 0 <= self.label_smoothing < 1:
            raise RecipeError(f"--label-smoothing must be at least 0 and below 1, not {self.label_smoothing}")
        if not 0 <= self.focal_gamma <= 5:
            raise RecipeError(f"--focal-gamma must be between 0 and 5, not {self.focal_gamma}")
        if self.low_res and self.frozen_below:
            raise RecipeError("--low-res is not available with --frozen-below (its views are cached)")
        if self.frozen_below and self.backbone != "facenet":
            raise RecipeError("--frozen-below needs --model facenet")
        if self.weights == "imagenet" and BACKBONES[self.backbone].constructor is None:
            raise RecipeError(
                f"{self.backbone} has no Keras download: port its ImageNet weights with "
                f"`python -m {PORTED[self.backbone][0]}` and pass --weights FILE"
            )
        if self.weights not in (None, "imagenet") and not Path(self.weights).is_file():
            raise RecipeError(f"weights file not found: {self.weights}")

    @classmethod
    def from_fields(cls, fields: dict, source: str) -> "Recipe":
        """A recipe from a mapping of field names (``source`` names it in errors)."""
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise RecipeError(f"{source}: unknown fields {', '.join(sorted(unknown))}")
        return cls(**fields)


def recipe_of(meta: dict, name: str) -> Recipe:
    """The recipe the model ``name`` was trained with (its model.json's ``training.recipe``), to
    train another of its kind. A weights file it started from that is not on this machine is
    refused, saying how to make it: starting from anything else would train another recipe."""
    fields = (meta.get("training") or {}).get("recipe")
    if not fields:
        raise RecipeError(f"{name} records no training recipe in its model.json: set FACELABEL_TRAIN_RECIPE")
    weights, backbone = fields.get("weights"), fields.get("backbone")
    if weights not in (None, "imagenet") and not Path(weights).is_file():
        how = (
            f"`python -m {PORTED[backbone][0]} --pth FILE --out {weights}` ports it (as `make model` does)"
            if backbone in PORTED
            else "copy it there"
        )
        raise RecipeError(
            f"{name} was trained from the weights file {weights}, which is not on this machine "
            f"({Path(weights).absolute()}): {how}, or set FACELABEL_TRAIN_RECIPE to train another recipe"
        )
    return Recipe.from_fields(fields, f"{name}'s recipe in its model.json")
