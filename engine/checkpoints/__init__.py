"""The checkpoint store and importer.

Torch-free at import time: ``CheckpointMeta``, ``list_checkpoints`` and ``read_meta`` are
read on the TUI's UI thread. ``CheckpointStore`` imports torch/safetensors only inside
its methods; the importer (``engine.checkpoints.importer``) imports torch at module level
and is loaded on the engine thread.
"""

from engine.api.checkpoints import CheckpointMeta, check_name, list_checkpoints, read_meta
from engine.checkpoints.store import CheckpointStore

__all__ = ["CheckpointMeta", "CheckpointStore", "check_name", "list_checkpoints", "read_meta"]
