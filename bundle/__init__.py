"""The model-bundle contract shared by training, export, serving and the API.

Nothing here loads a model or opens a connection: it is schemas, text normalization, hashing and the
layout of the model store. Dependencies: numpy, pydantic, zhconv (traditional -> simplified).
"""

from bundle.manifest import BundleKind, Manifest, Variant
from bundle.normalize import NormalizeConfig, normalize
from bundle.store import BundleError, ModelStore, verify_bundle

__all__ = [
    "BundleError",
    "BundleKind",
    "Manifest",
    "ModelStore",
    "NormalizeConfig",
    "Variant",
    "normalize",
    "verify_bundle",
]
