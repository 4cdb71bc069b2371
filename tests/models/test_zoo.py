"""The zoo builds every model with seeded weights, loads user files and rejects bad names/files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.errors import ModelFileError, UnknownModelError
from models.zoo import MODEL_NAMES, build_model, input_shape, load_model


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_every_zoo_model_builds_with_its_input_shape(name: str) -> None:
    model = build_model(name)
    assert tuple(model.inputs[0].shape[1:]) == input_shape(name)
    classes = 10 if name == "small_cnn" else 1000
    assert tuple(model.outputs[0].shape[1:]) == (classes,)


def test_same_seed_same_weights_other_seed_other_weights() -> None:
    first = build_model("small_cnn", seed=3).get_weights()
    again = build_model("small_cnn", seed=3).get_weights()
    other = build_model("small_cnn", seed=4).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0], other[0])


def test_unknown_name_lists_the_known_models() -> None:
    with pytest.raises(UnknownModelError) as info:
        load_model("resnet5")
    message = str(info.value)
    assert "'resnet5'" in message and "did you mean 'resnet50'" in message
    assert all(name in message for name in MODEL_NAMES)


def test_user_keras_file_round_trips(tmp_path: Path) -> None:
    model = build_model("small_cnn")
    path = tmp_path / "mine.keras"
    model.save(path)
    loaded = load_model(path)
    x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
    assert np.array_equal(np.asarray(loaded(x)), np.asarray(model(x)))


@pytest.mark.parametrize(
    ("content", "name", "needle"),
    [
        (b"not a zip", "corrupt.keras", "not a valid .keras file"),
        (b"PK\x03\x04garbage", "truncated.h5", "cannot load model file"),
        (None, "missing.keras", "does not exist"),
    ],
)
def test_bad_model_files_raise_model_file_error(
    tmp_path: Path, content: bytes | None, name: str, needle: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelFileError, match=needle):
        load_model(path)


def test_plain_saved_model_dir_is_explained(tmp_path: Path) -> None:
    (tmp_path / "saved_model.pb").write_bytes(b"\x00")
    with pytest.raises(ModelFileError, match="plain TensorFlow SavedModel"):
        load_model(tmp_path)
