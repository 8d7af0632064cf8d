"""Sub-command groups (``kdcam runs list``, ``kdcam checkpoints import``): one parser whose actions are
sub-commands. Kept apart from engine.cli.output so building the parser imports no Rich (``--help`` stays
instant)."""

from __future__ import annotations

import argparse


def command_group(subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help: str,
                  description: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
    """The command ``name``, returning the subparsers its actions are added to; given no action it
    prints its help and exits 2 (a usage error), so ``kdcam runs`` alone shows what it can do."""
    parser = subparsers.add_parser(name, help=help, description=description)
    parser.set_defaults(handler=lambda args: _print_help(parser))
    return parser.add_subparsers(dest="action", metavar="ACTION")


def _print_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
