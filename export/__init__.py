"""ONNX export of training checkpoints into verified model bundles (``python -m export``).

Importing this package loads no model and imports neither torch nor optimum: they are imported inside the
functions that need them.
"""

from export.errors import ExportError
from export.pipeline import export_bundle

__all__ = ["ExportError", "export_bundle"]
