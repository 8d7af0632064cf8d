"""kdcam-tui: a keyboard-first Textual view over a kdcam workspace.

The UI thread only reads small files and talks to the engine through its job runner;
torch is imported on the engine thread, never here.
"""
