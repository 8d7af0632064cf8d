"""Errors a user can act on. Their message is shown as-is by the CLI and the TUI."""


class KdcamError(Exception):
    """Bad input or an unmet precondition, explained in the message."""


class JobCancelled(Exception):
    """Raised inside a job when its cancel flag is seen; the job cleans up and exits."""


class CommandCancelled(KdcamError):
    """The user pressed Ctrl-C and the job stopped cleanly; the CLI says what was kept and exits 130."""
