"""Image-classification datasets from local files only: sklearn digits, CIFAR-10 batches, folders.

Every loader returns a :class:`Dataset` of float32 images in [0, 1], shape ``(N, C, H, W)``,
with int64 labels and a fixed train/test split. Nothing is downloaded:

* ``digits`` — scikit-learn's bundled handwritten digits (1,797 8x8 grey images, values
  0..16 divided by 16, 10 classes), read from the installed package; stratified split with
  a fixed seed (default 20% test → 360 test images).
* ``cifar10`` — the standard "CIFAR-10 python version" directory (``data_batch_1`` ..
  ``data_batch_5``, ``test_batch``, optional ``batches.meta``). Those files are pickles; they
  are read with an unpickler that only admits the numpy array types the format uses.
* ``folder`` — one sub-directory per class holding image files (PNG, JPEG, BMP, ...), read
  with Pillow; if the directory has ``train/`` and ``test/`` sub-directories they are the
  split, else a seeded stratified split. Images are converted to grey if all are grey,
  else RGB, and must share one size unless ``image_size`` is given.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quant.errors import ConfigError, check_choice, check_fraction

DATASETS = ("digits", "cifar10", "folder")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images (float32, [0, 1], N x C x H x W) and int64 labels, split into train and test."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _split(x: np.ndarray, y: np.ndarray, test_fraction: float,
           seed: int) -> tuple[np.ndarray, ...]:
    """Stratified split: per class, a seeded permutation; the first round(f*n) go to test."""
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        test[idx[:round(test_fraction * len(idx))]] = True
    return x[~test], y[~test], x[test], y[test]


def load_digits(seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 digits, split with ``seed`` (stratified)."""
    from sklearn.datasets import load_digits as sk_digits

    f = check_fraction("test_fraction", test_fraction)
    d = sk_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    xtr, ytr, xte, yte = _split(x, y, f, seed)
    return Dataset("digits", xtr, ytr, xte, yte, tuple(str(c) for c in range(10)))


class _ArrayUnpickler(pickle.Unpickler):
    """Admits only what CIFAR-10 batch files contain (dicts, lists, numpy arrays)."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as f:
            d = _ArrayUnpickler(f, encoding="bytes").load()
        data = np.asarray(d[b"data"], dtype=np.uint8)
        labels = np.asarray(d[b"labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError,
            AttributeError, IndexError) as exc:
        raise ConfigError(f"data-dir file {path.name} must be a CIFAR-10 python batch "
                          f"(a pickled dict with b'data' and b'labels'), not readable as one "
                          f"({type(exc).__name__})") from None
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise ConfigError(f"data-dir file {path.name} must hold N x 3072 uint8 images and N "
                          f"labels, not data of shape {data.shape} and {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


def load_cifar10(directory: str | Path) -> Dataset:
    """The CIFAR-10 python batch directory (train: data_batch_1..5, test: test_batch)."""
    root = Path(directory)
    need = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    missing = [n for n in need if not (root / n).is_file()]
    if not root.is_dir() or missing:
        raise ConfigError(f"data-dir must be a CIFAR-10 python batch directory "
                          f"(data_batch_1..5, test_batch), not {str(root)!r}: missing "
                          f"{', '.join(missing) if root.is_dir() else 'the directory'}")
    parts = [_read_cifar_batch(root / n) for n in need[:5]]
    xtr = np.concatenate([p[0] for p in parts]).astype(np.float32) / 255.0
    ytr = np.concatenate([p[1] for p in parts])
    xte, yte = _read_cifar_batch(root / "test_batch")
    classes = tuple(str(i) for i in range(10))
    meta = root / "batches.meta"
    if meta.is_file():
        try:
            with meta.open("rb") as f:
                names = _ArrayUnpickler(f, encoding="bytes").load()[b"label_names"]
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
        except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError) as exc:
            raise ConfigError(f"data-dir file batches.meta must be a pickled dict with "
                              f"b'label_names', not readable as one ({type(exc).__name__})"
                              ) from None
    n_cls = int(max(ytr.max(), yte.max())) + 1
    if len(classes) < n_cls or ytr.min() < 0 or yte.min() < 0:
        raise ConfigError(f"labels must lie in 0..{len(classes) - 1}, "
                          f"not {int(min(ytr.min(), yte.min()))}..{n_cls - 1}")
    return Dataset("cifar10", xtr, ytr, xte.astype(np.float32) / 255.0, yte, classes)


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_images(root: Path, classes: list[str],
                 image_size: tuple[int, int] | None) -> tuple[list, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    imgs, labels = [], []
    for ci, cname in enumerate(classes):
        cdir = root / cname
        files = sorted(p for p in cdir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if cdir.is_dir() else []
        for p in files:
            try:
                with Image.open(p) as im:
                    im.load()
                    if image_size is not None:
                        im = im.resize((image_size[1], image_size[0]))
                    imgs.append(im.copy())
            except (OSError, UnidentifiedImageError):
                raise ConfigError(f"image file must be readable by Pillow, not {str(p)!r}"
                                  ) from None
            labels.append(ci)
    return imgs, np.asarray(labels, dtype=np.int64)


def _to_array(imgs: list, grey: bool) -> np.ndarray:
    sizes = {im.size for im in imgs}
    if len(sizes) > 1:
        raise ConfigError(f"images must share one size (or pass image_size), not "
                          f"{len(sizes)} sizes: {sorted(sizes)[:3]}")
    mode = "L" if grey else "RGB"
    arr = np.stack([np.asarray(im.convert(mode), dtype=np.float32) / 255.0 for im in imgs])
    return arr[:, None] if grey else arr.transpose(0, 3, 1, 2)


def load_image_folder(directory: str | Path, image_size: tuple[int, int] | None = None,
                      seed: int = 0, test_fraction: float = 0.2) -> Dataset:
    """Class-per-sub-directory images; ``train/`` + ``test/`` if present, else a seeded split."""
    f = check_fraction("test_fraction", test_fraction)
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"data-dir must be a directory of class sub-directories, "
                          f"not {str(root)!r}")
    split = (root / "train").is_dir() and (root / "test").is_dir()
    base = root / "train" if split else root
    classes = [p.name for p in _class_dirs(base)]
    if len(classes) < 2:
        raise ConfigError(f"data-dir must hold at least 2 class sub-directories with images, "
                          f"not {len(classes)} in {str(base)!r}")
    imgs, y = _read_images(base, classes, image_size)
    if split:
        extra = sorted({p.name for p in _class_dirs(root / "test")} - set(classes))
        if extra:
            raise ConfigError(f"test classes must also be train classes, not {extra}")
        timgs, yte = _read_images(root / "test", classes, image_size)
    else:
        timgs, yte = [], np.zeros(0, np.int64)
    if len(imgs) == 0:
        raise ConfigError(f"data-dir must contain image files ({', '.join(IMAGE_SUFFIXES)}) "
                          f"in its class sub-directories, not none in {str(base)!r}")
    grey = all(im.mode in ("L", "1", "I", "I;16", "LA") for im in imgs + timgs)
    if split:
        x_all = _to_array(imgs + timgs, grey)
        xtr, xte, ytr = x_all[:len(imgs)], x_all[len(imgs):], y
    else:
        xtr, ytr, xte, yte = _split(_to_array(imgs, grey), y, f, seed)
    if len(yte) == 0:
        raise ConfigError("test split must not be empty: add images or a test/ directory")
    return Dataset("folder", xtr, ytr, xte, yte, tuple(classes))


def load_dataset(name: str, directory: str | Path | None = None, seed: int = 0,
                 image_size: tuple[int, int] | None = None) -> Dataset:
    """Dispatch by name (:data:`DATASETS`); ``directory`` is required for cifar10 and folder."""
    check_choice("data", name, DATASETS)
    if image_size is not None and name != "folder":
        raise ConfigError(f"image-size applies only to data folder, not {name}")
    if name == "digits":
        if directory is not None:
            raise ConfigError(f"data-dir applies to cifar10 and folder, not digits "
                              f"(got {str(directory)!r})")
        return load_digits(seed=seed)
    if directory is None:
        raise ConfigError(f"data-dir must be given for data {name}, not omitted")
    if name == "cifar10":
        return load_cifar10(directory)
    return load_image_folder(directory, image_size=image_size, seed=seed)
