"""minidl.data: data sets (CIFAR-10, MNIST, image folders), preprocessing, augmentation, batching."""
from .augment import Augment, random_hflip, random_translate
from .cifar10 import load_cifar10, looks_like_cifar10, write_cifar10_archive
from .dataset import ArrayDataset
from .download import DownloadError, default_cache_dir, download, md5sum
from .image_folder import load_image_folder
from .loader import DataLoader
from .mnist import load_mnist, looks_like_mnist, read_idx_images, read_idx_labels, write_idx
from .preprocess import Compose, GlobalContrastNormalize, Standardize, Transform, ZCAWhitening, to_float

__all__ = ["ArrayDataset", "DataLoader", "Augment", "random_translate", "random_hflip", "load_cifar10",
           "looks_like_cifar10", "write_cifar10_archive", "load_mnist", "looks_like_mnist", "read_idx_images",
           "read_idx_labels", "write_idx", "load_image_folder", "download", "md5sum", "DownloadError",
           "default_cache_dir", "Standardize", "GlobalContrastNormalize", "ZCAWhitening", "Compose", "Transform",
           "to_float"]
