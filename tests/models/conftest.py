"""Session fixtures of the model tests: the digits data and a small CNN trained on it once.

Training takes ~10 s on two cores, so every test that needs trained cut features shares this one
(seeded: 4 epochs of Adam on the fixed digits split).
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def digits_data() -> Any:
    from models.datasets import load_digits

    return load_digits(seed=0)


@pytest.fixture(scope="session")
def trained_small_cnn(digits_data: Any) -> Any:
    """The zoo's small CNN after 4 seeded epochs on digits (do not train it further in a test)."""
    from models.training import TrainConfig, train_classifier
    from models.zoo import build_model

    model = build_model("small_cnn", seed=0)
    train_classifier(model, digits_data, TrainConfig(epochs=4, seed=0))
    return model
