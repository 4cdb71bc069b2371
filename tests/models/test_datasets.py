"""Data set loaders: sklearn digits and a user's image folder."""

from __future__ import annotations

import numpy as np
import pytest

from models.datasets import load_dataset, load_digits, load_image_folder
from models.errors import DatasetError


def test_digits_shapes_ranges_and_split():
    data = load_digits(seed=0)
    assert data.x_train.shape == (1347, 32, 32, 3) and data.x_test.shape == (450, 32, 32, 3)
    assert data.x_train.dtype == np.float32 and data.x_train.min() >= 0.0 and data.x_train.max() == 1.0
    assert data.num_classes == 10 and set(np.unique(data.y_test)) == set(range(10))
    # stratified: every class keeps ~25% of its images in the test part
    counts = np.bincount(data.y_test, minlength=10)
    assert counts.min() >= 43 and counts.max() <= 47
    # upsampled by pixel repetition, grey replicated to 3 channels
    np.testing.assert_array_equal(data.x_train[0, :4, :4, 0], np.full((4, 4), data.x_train[0, 0, 0, 0]))
    np.testing.assert_array_equal(data.x_train[..., 0], data.x_train[..., 2])
    again = load_digits(seed=0)
    np.testing.assert_array_equal(again.y_test, data.y_test)
    assert not np.array_equal(load_digits(seed=1).y_test, data.y_test)
    with pytest.raises(DatasetError, match="multiple of 8"):
        load_digits(size=30)


def _write_images(root, classes=("cat", "dog"), per_class=6):
    from PIL import Image

    rng = np.random.default_rng(0)
    for label, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.full((20, 24, 3), 40 + 160 * label, np.uint8) + rng.integers(
                0, 20, (20, 24, 3), dtype=np.uint8
            )
            Image.fromarray(pixels).save(folder / f"{i}.png")


def test_image_folder(tmp_path):
    _write_images(tmp_path / "pets")
    data = load_image_folder(tmp_path / "pets", image_size=(32, 32), test_fraction=0.25, seed=0)
    assert data.class_names == ["cat", "dog"]
    assert len(data.x_train) + len(data.x_test) == 12 and len(data.x_test) == 3
    assert data.x_train.shape[1:] == (32, 32, 3) and data.x_train.max() <= 1.0
    # the class is visible in the brightness: labels follow the folders
    bright = data.x_train.mean(axis=(1, 2, 3)) > 0.5
    np.testing.assert_array_equal(bright, data.y_train == 1)
    assert load_dataset(tmp_path / "pets").name == "pets"


def test_image_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_image_folder(tmp_path / "missing")
    _write_images(tmp_path / "one", classes=("only",))
    with pytest.raises(DatasetError, match="at least two class"):
        load_image_folder(tmp_path / "one")
    with pytest.raises(DatasetError, match="unknown data set"):
        load_dataset("mnist-from-the-internet")


def test_photos_are_sklearns_two_fitted_without_stretching(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from models.datasets import fit_image, load_photos, photo_crops

    photos = load_photos((224, 224))
    assert len(photos) == 2 and all(p.shape == (224, 224, 3) and p.dtype == np.float32 for p in photos)
    assert all(p.min() >= 0.0 and p.max() <= 1.0 and p.std() > 0.1 for p in photos)  # photos, not flat
    np.testing.assert_array_equal(np.rint(photos[0] * 255) / 255, photos[0])  # exactly uint8 / 255
    # a wide image is center-cropped, not squeezed: a left/right split stays centered
    wide = np.zeros((10, 40, 3), np.uint8)
    wide[:, 20:] = 255
    fitted = fit_image(wide, (10, 10))
    assert fitted[:, 0].max() < 128 and fitted[:, -1].min() > 128
    # the user's own file, and a clear error for one that is not an image
    Image.fromarray((photos[1] * 255).astype(np.uint8)).save(tmp_path / "mine.png")
    (mine,) = load_photos((32, 48), [tmp_path / "mine.png"])
    assert mine.shape == (32, 48, 3)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match="cannot read image"):
        load_photos((32, 32), [tmp_path / "bad.jpg"])
    with pytest.raises(DatasetError, match="does not exist"):
        load_photos((32, 32), [tmp_path / "missing.jpg"])
    crops = photo_crops(4, (32, 32), seed=1)
    assert crops.shape == (4, 32, 32, 3) and not np.array_equal(crops[0], crops[2])
    np.testing.assert_array_equal(crops, photo_crops(4, (32, 32), seed=1))
