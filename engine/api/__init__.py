"""The contract between the engine and its front-ends: torch-free, typed, validated.

``tui/`` and ``engine/cli/`` import the engine only through this package, ``engine.jobs``
and ``engine.events`` (a test walks their imports). It holds:

- ``catalogue`` and ``bands``: every name that defines the product (CAM methods, targets,
  KD methods and defaults, recipes, metrics, splits, bands and their colours, formats);
- ``specs``: what a front-end asks the engine to do (``engine.runners`` maps each to its job);
- ``results``: typed job results and the typed ``results.json``;
- ``checkpoints``, ``runs``, ``analyses``: one validating reader per workspace format, each
  raising one ``KdcamError`` that names the file, the field and what was expected;
- ``validate``: the typed field reader they share.
"""
