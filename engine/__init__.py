"""kdcam engine: all computation (training, CAMs, analysis, reports).

Importing ``engine`` or its torch-free modules (``events``, ``jobs``, ``specs``,
``workspace``, ``atomic``) must never import torch: the TUI imports them on its UI
thread before the first frame. Torch is imported inside job functions, on the
engine's worker thread.
"""

__version__ = "0.1.0"
