"""Reports: an analysis (``analyses/ID/``) exported as a folder a person can copy home.

``exports/NAME/`` holds ``report.html`` (one self-contained page: figures inlined as data URIs,
inline CSS and a few lines of inline JavaScript for sortable tables, no network reference),
``results.json`` (the analysis's, byte for byte), ``leaderboard.csv``, ``per_image.csv``,
``per_class_accuracy.csv``, ``confused_pairs.csv`` and ``figures/*.png``. The job is
``engine.reports.export:run_export_job`` (``ExportSpec``); it needs numpy and matplotlib, not torch.

Modules: ``source`` (the analysis, read through ``engine.api.analyses``), ``tables`` (CSV
rows), ``gallery`` (which figures and which example images), ``figures`` (drawing), ``html`` and
``report`` (the page), ``bands`` (band colours), ``export`` (the job).
"""
