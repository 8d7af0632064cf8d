"""Training: recipes, the per-model trainer, the teacher+students suite, run directories.

``engine.api.runs`` is torch-free (the TUI reads runs on its UI thread); the rest imports torch.
"""
