"""What a butterfly or SmartDeal study starts from: the base Keras model and the data set at its input size."""

from __future__ import annotations

from typing import Any

__all__ = ["EXTRA_MODELS", "load_study_inputs"]

EXTRA_MODELS = ("small_resnet",)  # base models beyond the zoo, built by models.small_resnet


def load_study_inputs(model: str, dataset: str, seed: int) -> tuple[Any, Any]:
    """The base Keras model of a study (zoo name or ``small_resnet``) and the data set at its input size."""
    from models.datasets import load_dataset

    if model in EXTRA_MODELS:
        from models.small_resnet import build_small_resnet

        base = build_small_resnet(seed=seed)
    else:
        import models.feature_quantizer  # noqa: F401  (registers the layer, so saved variants load)
        from models.zoo import load_model

        base = load_model(model, seed=seed)
    h, w = (int(d) for d in base.inputs[0].shape[1:3])
    return base, load_dataset(dataset, image_size=(h, w), seed=seed)
