"""``kdcam``: the engine's jobs from a shell, with Rich progress for people and JSON for scripts.

Each subcommand lives in its own module with ``register(subparsers)``; those modules
import torch only inside their handlers, so ``kdcam --help`` is instant.
"""

from __future__ import annotations

import argparse
import sys

from engine import __version__
from engine.cli import analyses, analyze, checkpoints, data, demo, evaluate, export, runs, train
from engine.errors import CommandCancelled, KdcamError

SUBCOMMANDS = (checkpoints, data, train, runs, analyze, analyses, evaluate, export, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kdcam",
        description="Knowledge distillation and class-activation maps: train teachers and students, "
        "compare where they look, export reports.",
    )
    parser.add_argument("--version", action="version", version=f"kdcam {__version__}")
    parser.add_argument("--workspace", "-w", default=".", help="workspace directory (default: current directory)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # re-run as is under torchrun (--nproc-per-node)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except CommandCancelled as exc:  # Ctrl-C, handled: the conventional status of an interrupted command
        from engine.cli.output import error_console

        error_console().print(f"[yellow]{exc}[/]", highlight=False, soft_wrap=True)
        return 130
    except KdcamError as exc:
        from engine.cli.output import error_console

        error_console().print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
