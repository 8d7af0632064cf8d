"""One module per screen of kdcam-tui, plus the dialogs they open."""
