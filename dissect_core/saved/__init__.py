"""A result saved as a self-contained folder (safetensors, JSON and JPEG views; no pickles) and read back strictly."""

from dissect_core.saved.read import SavedRun, load_saved
from dissect_core.saved.write import save_result, write_result_files

__all__ = ["SavedRun", "load_saved", "save_result", "write_result_files"]
