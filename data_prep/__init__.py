"""Raw micro-expression databases in, cached optical flow out.

``data_prep`` reads CASME II, SAMM and SMIC as their users have them on disk, builds the sample index
of every protocol the reproduced papers use, and turns frames into model inputs (face crop, TV-L1 flow,
optical strain) stored in an ``.npz`` cache with provenance. It never imports TensorFlow or
``mer_keras``: preparing data should not pay for either.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("mer_keras")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
