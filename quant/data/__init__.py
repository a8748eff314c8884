"""Dataset loaders (numpy only): scikit-learn's bundled digits, CIFAR-10 batches, image folders."""

from quant.data.datasets import (
    DATASETS,
    Dataset,
    load_cifar10,
    load_dataset,
    load_digits,
    load_image_folder,
)

__all__ = ["DATASETS", "Dataset", "load_cifar10", "load_dataset", "load_digits",
           "load_image_folder"]
