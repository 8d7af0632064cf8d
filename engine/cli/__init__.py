"""The headless ``kdcam`` command line."""
