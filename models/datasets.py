"""Image data: sklearn's digits and image folders (labelled sets), and real photos as model inputs.

The labelled loaders return a :class:`ImageDataset` of numpy arrays, images float32 in ``[0, 1]`` with shape
``(N, H, W, 3)``, labels int64 class indices, split into a training and a held-out test part by a
fixed seed. The whole set is held in memory: these loaders are for the small data sets a butterfly unit
is fine-tuned on, not for ImageNet.

Model inputs for runs and int8 calibration are real photos, not noise: the two photos scikit-learn
ships (``load_sample_images``: a Chinese temple and a flower, 427x640 JPEGs) or the user's own files,
center-cropped to the model's aspect ratio and resized with Pillow (:func:`load_photos`);
:func:`photo_crops` draws seeded random crops and flips of them (photo-like int8 calibration data:
pass them as ``export_bundle(..., calibration_inputs=photo_crops(16, (h, w)))``; the default calibration
stays seeded uniform noise in [0, 1), whose input range covers photos, see :mod:`models.export`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.errors import DatasetError

__all__ = [
    "SAMPLE_PHOTOS",
    "ImageDataset",
    "fit_image",
    "load_dataset",
    "load_digits",
    "load_image_folder",
    "load_photos",
    "photo_crops",
]

_IMAGE_SUFFIXES = {".bmp", ".gif", ".jpeg", ".jpg", ".png"}
SAMPLE_PHOTOS: tuple[str, ...] = ("china.jpg", "flower.jpg")  # sklearn.datasets.load_sample_images


@dataclass
class ImageDataset:
    """Train/test arrays: ``x_*`` float32 ``(N, H, W, 3)`` in [0, 1], ``y_*`` int64 ``(N,)``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:  # (H, W, C)
        h, w, c = self.x_train.shape[1:]
        return int(h), int(w), int(c)


def load_digits(*, size: int = 32, test_fraction: float = 0.25, seed: int = 0) -> ImageDataset:
    """scikit-learn's bundled handwritten digits (1797 8x8 grayscale images, 10 classes).

    The 8x8 images (values 0..16) are scaled to [0, 1], upsampled by pixel repetition to
    ``size x size`` (a multiple of 8; 32 fits the zoo's small CNN) and repeated to 3 channels. The split
    is stratified by class and fixed by ``seed``.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if size % 8 or size < 8:
        raise DatasetError(f"digits image size must be a positive multiple of 8, got {size}")
    bunch = sk_load_digits()
    images = bunch.images.astype(np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    factor = size // 8
    images = images.repeat(factor, axis=1).repeat(factor, axis=2)  # (1797, size, size)
    x = np.repeat(images[..., None], 3, axis=-1)  # (1797, size, size, 3)
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    return ImageDataset(
        name="digits",
        x_train=np.ascontiguousarray(x_train),
        y_train=y_train,
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test,
        class_names=[str(d) for d in range(10)],
    )


def load_image_folder(
    directory: Path | str,
    *,
    image_size: tuple[int, int] = (32, 32),
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ImageDataset:
    """Images in ``directory/<class name>/*.png|jpg|...`` via ``keras.utils.image_dataset_from_directory``.

    Images are resized to ``image_size`` (H, W), converted to RGB and scaled to [0, 1]; the split into
    train and test uses Keras' ``validation_split`` with ``seed``.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DatasetError(f"image folder {root} does not exist (expected DIR/<class name>/<images>)")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    counts = {c: sum(1 for f in (root / c).iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES) for c in classes}
    if len([c for c, n in counts.items() if n]) < 2:
        raise DatasetError(
            f"image folder {root} needs at least two class subfolders with images "
            f"({', '.join(sorted(_IMAGE_SUFFIXES))}); found {counts or 'no subfolders'}"
        )
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"test fraction must be between 0 and 1, got {test_fraction}")
    import keras

    train_ds, test_ds = keras.utils.image_dataset_from_directory(
        root,
        labels="inferred",
        label_mode="int",
        color_mode="rgb",
        image_size=image_size,
        shuffle=True,
        seed=seed,
        validation_split=test_fraction,
        subset="both",
        batch_size=None,
        verbose=False,
    )
    x_train, y_train = _to_arrays(train_ds)
    x_test, y_test = _to_arrays(test_ds)
    if len(x_test) == 0 or len(x_train) == 0:
        raise DatasetError(f"image folder {root} has too few images for a train/test split")
    return ImageDataset(
        name=root.name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=list(train_ds.class_names),
    )


def _to_arrays(dataset: object) -> tuple[np.ndarray, np.ndarray]:
    """A tf.data dataset of (image, label) pairs -> float32 images / 255 and int64 labels."""
    images: list[np.ndarray] = []
    labels: list[int] = []
    for image, label in dataset:  # type: ignore[attr-defined]
        images.append(np.asarray(image, dtype=np.float32) / 255.0)
        labels.append(int(label))
    if not images:
        return np.zeros((0, 1, 1, 3), np.float32), np.zeros((0,), np.int64)
    return np.stack(images), np.asarray(labels, dtype=np.int64)


def load_dataset(spec: str | Path, *, image_size: tuple[int, int] = (32, 32), seed: int = 0) -> ImageDataset:
    """``"digits"`` or a path to an image folder, at the model's input ``image_size``."""
    if str(spec) == "digits":
        if image_size[0] != image_size[1]:
            raise DatasetError(f"digits are square; the model wants {image_size[0]}x{image_size[1]} input")
        return load_digits(size=image_size[0], seed=seed)
    if not Path(spec).exists():
        raise DatasetError(f"unknown data set {str(spec)!r}: give 'digits' or an image folder path")
    return load_image_folder(spec, image_size=image_size, seed=seed)


def fit_image(
    image: np.ndarray, size: tuple[int, int], box: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """An RGB ``uint8`` image (H, W, 3) cropped and resized to ``size`` (h, w) with Pillow (bicubic).

    ``box`` = (left, top, right, bottom) in pixels crops first; by default the largest centered crop
    with the target's aspect ratio, so nothing is stretched. Returns ``uint8`` (h, w, 3).
    """
    from PIL import Image

    height, width = int(image.shape[0]), int(image.shape[1])
    h, w = size
    if box is None:
        scale = min(width / w, height / h)  # source pixels per target pixel of the centered crop
        crop_w, crop_h = w * scale, h * scale
        left, top = (width - crop_w) / 2, (height - crop_h) / 2
        box = (left, top, left + crop_w, top + crop_h)
    picture = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB")
    resized = picture.resize((w, h), Image.Resampling.BICUBIC, box=box)
    return np.asarray(resized, dtype=np.uint8)


def _sample_photos() -> list[np.ndarray]:
    """scikit-learn's two sample photos, ``uint8`` (427, 640, 3) each, in :data:`SAMPLE_PHOTOS` order."""
    from sklearn.datasets import load_sample_image

    return [np.asarray(load_sample_image(name), dtype=np.uint8) for name in SAMPLE_PHOTOS]


def _read_photo(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as picture:
            return np.asarray(picture.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise DatasetError(f"image file {path} does not exist") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc} (give a JPEG/PNG/BMP/GIF file)") from None


def load_photos(size: tuple[int, int], paths: list[Path] | tuple[Path, ...] = ()) -> list[np.ndarray]:
    """Photos as model inputs: float32 (h, w, 3) in [0, 1] (``uint8 / 255``), one per photo.

    ``paths``: the user's image files; none = scikit-learn's two sample photos. Each is center-cropped
    to the aspect ratio of ``size`` (h, w) and resized (:func:`fit_image`).
    """
    images = [_read_photo(Path(p)) for p in paths] if paths else _sample_photos()
    return [fit_image(image, size).astype(np.float32) / 255.0 for image in images]


def photo_crops(count: int, size: tuple[int, int], *, seed: int = 0) -> np.ndarray:
    """``count`` seeded random crops of the sample photos: float32 (count, h, w, 3) in [0, 1].

    Each crop takes 40-100 % of a photo's shorter side at a random place, mirrored half of the time,
    resized to ``size`` (h, w): varied, photo-like inputs for int8 calibration.
    """
    rng = np.random.default_rng(seed)
    photos = _sample_photos()
    h, w = size
    crops = np.empty((count, h, w, 3), np.float32)
    for i in range(count):
        photo = photos[i % len(photos)]
        height, width = photo.shape[:2]
        scale = min(width / w, height / h) * rng.uniform(0.4, 1.0)  # source pixels per target pixel
        crop_w, crop_h = w * scale, h * scale
        left, top = rng.uniform(0, width - crop_w), rng.uniform(0, height - crop_h)
        crop = fit_image(photo, size, box=(left, top, left + crop_w, top + crop_h))
        crops[i] = (crop[:, ::-1] if rng.random() < 0.5 else crop).astype(np.float32) / 255.0
    return crops
