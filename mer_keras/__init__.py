"""mer_keras: faithful Keras 3 reproductions of five micro-expression recognition papers.

The library reads the ``.npz`` caches that ``data_prep`` writes; it never reads raw video. Models
(``mer_keras.models``) know nothing of folds or runs; ``mer_keras.training`` runs the folds of a
protocol; ``mer_keras.report`` turns run folders into the papers' tables.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("mer_keras")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
