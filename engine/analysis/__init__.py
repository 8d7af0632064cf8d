"""Analysis: CAM similarity between a teacher and its students, diagnosis, sanity checks.

Only ``results`` is torch-free (the TUI reads finished analyses with it); the job and
metrics modules import torch.
"""
