"""Analysis: CAM similarity between a teacher and its students, diagnosis, sanity checks.

Torch-free (numpy only, safe on the UI thread): ``results`` (readers of finished analyses),
``bands``, ``bootstrap``, ``diagnosis``, ``superclasses``. The job (``job``) and the modules
it drives (``inputs``, ``collect``, ``metrics``, ``aggregate``, ``sanity``, ``faithfulness``)
import torch.
"""
