"""Dataset loaders: bundled digits, CIFAR-10 batch directories and image folders (tiny files)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from quant.data import load_cifar10, load_dataset, load_digits, load_image_folder
from quant.errors import ConfigError


def test_digits_split_is_fixed_and_stratified():
    a, b = load_digits(), load_digits()
    np.testing.assert_array_equal(a.x_test, b.x_test)
    assert a.x_train.shape == (1438, 1, 8, 8) and a.x_test.shape == (359, 1, 8, 8)
    assert a.x_train.dtype == np.float32 and 0 <= a.x_train.min() and a.x_train.max() <= 1
    counts = np.bincount(a.y_test, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37
    c = load_digits(seed=1)
    assert not np.array_equal(a.y_test, c.y_test) or not np.array_equal(a.x_test, c.x_test)


def _write_cifar(root, n=4, with_meta=True, bad=None):
    root.mkdir()
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        d = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
             b"labels": [int(v) for v in rng.integers(0, 10, n)]}
        if name == bad:
            d = {b"images": d[b"data"]}
        with (root / name).open("wb") as f:
            pickle.dump(d, f)
    if with_meta:
        with (root / "batches.meta").open("wb") as f:
            pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, f)


def test_cifar10_loader(tmp_path):
    _write_cifar(tmp_path / "c")
    d = load_cifar10(tmp_path / "c")
    assert d.x_train.shape == (20, 3, 32, 32) and d.x_test.shape == (4, 3, 32, 32)
    assert d.classes[3] == "c3" and d.x_train.max() <= 1.0


def test_cifar10_missing_batch(tmp_path):
    _write_cifar(tmp_path / "c")
    (tmp_path / "c" / "data_batch_3").unlink()
    with pytest.raises(ConfigError, match=r"data-dir must be a CIFAR-10 python batch directory "
                                          r".*missing data_batch_3"):
        load_cifar10(tmp_path / "c")


def test_cifar10_wrong_content(tmp_path):
    _write_cifar(tmp_path / "c", bad="test_batch")
    with pytest.raises(ConfigError, match="data-dir file test_batch must be a CIFAR-10 python "
                                          "batch"):
        load_cifar10(tmp_path / "c")


def test_cifar10_refuses_arbitrary_pickles(tmp_path):
    _write_cifar(tmp_path / "c")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))
    with (tmp_path / "c" / "data_batch_1").open("wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(ConfigError, match="data_batch_1 must be a CIFAR-10 python batch"):
        load_cifar10(tmp_path / "c")


def _write_folder(root, classes=("cat", "dog"), n=5, size=(6, 6), mode="L"):
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            shape = size[::-1] + ((3,) if mode == "RGB" else ())
            arr = rng.integers(0, 256, shape, dtype=np.uint8)
            Image.fromarray(arr, mode=mode).save(root / c / f"{i}.png")


def test_image_folder_split(tmp_path):
    _write_folder(tmp_path / "f")
    d = load_image_folder(tmp_path / "f")
    assert d.classes == ("cat", "dog")
    assert d.x_train.shape == (8, 1, 6, 6) and d.x_test.shape == (2, 1, 6, 6)
    assert sorted(d.y_test) == [0, 1]


def test_image_folder_train_test_and_rgb_resize(tmp_path):
    _write_folder(tmp_path / "f" / "train", n=3, size=(7, 5), mode="RGB")
    _write_folder(tmp_path / "f" / "test", n=1, size=(7, 5), mode="RGB")
    d = load_image_folder(tmp_path / "f", image_size=(4, 4))
    assert d.x_train.shape == (6, 3, 4, 4) and d.x_test.shape == (2, 3, 4, 4)


def test_image_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="data-dir must be a directory of class"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "one" / "a").mkdir(parents=True)
    with pytest.raises(ConfigError, match="data-dir must hold at least 2 class sub-directories"):
        load_image_folder(tmp_path / "one")
    _write_folder(tmp_path / "mixed")
    Image.fromarray(np.zeros((9, 9), np.uint8)).save(tmp_path / "mixed" / "cat" / "big.png")
    with pytest.raises(ConfigError, match="images must share one size"):
        load_image_folder(tmp_path / "mixed")
    _write_folder(tmp_path / "broken")
    (tmp_path / "broken" / "dog" / "x.png").write_bytes(b"not a png")
    with pytest.raises(ConfigError, match="image file must be readable by Pillow"):
        load_image_folder(tmp_path / "broken")


def test_load_dataset_dispatch_errors(tmp_path):
    with pytest.raises(ConfigError, match="data must be one of digits, cifar10, folder, "
                                          "not 'mnist'"):
        load_dataset("mnist")
    with pytest.raises(ConfigError, match="data-dir must be given for data cifar10"):
        load_dataset("cifar10")
    with pytest.raises(ConfigError, match="data-dir applies to cifar10 and folder, not digits"):
        load_dataset("digits", tmp_path)
    _write_folder(tmp_path / "f")
    with pytest.raises(ConfigError, match="data-dir must be a CIFAR-10 python batch directory"):
        load_dataset("cifar10", tmp_path / "f")
