"""Command line: ``python -m autograder COMMAND ...``. Parses and dispatches only.

Each command lives in its own module, which defines ``add_arguments(parser)`` and ``run(args) -> int``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

COMMANDS = {
    # name: (module, one-line help)
    "build": ("autograder.commands.build", "generate the student release and the solutions from source/"),
    "fetch-data": ("autograder.commands.fetch_data", "fetch MNIST into data/MNIST/raw/ and check its sha256"),
    "grade": ("autograder.commands.grade", "grade one notebook in the sandbox with the hidden tests"),
    "batch": ("autograder.commands.batch", "grade a K-LMS submissions zip (or a folder) into a gradebook"),
    "override": ("autograder.commands.override", "record a TA's score decision (kept across re-batching)"),
    "export": ("autograder.commands.export", "write the K-LMS gradebook CSV and the per-question CSV"),
    "upload": ("autograder.commands.upload", "post scores and comments to K-LMS through the Canvas API"),
    "feedback": ("autograder.commands.feedback", "write per-student feedback (Markdown, HTML, text)"),
    "report": ("autograder.commands.report", "write the class report (one HTML file with plots)"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``only`` names the one command whose module is imported (all when None)."""
    parser = argparse.ArgumentParser(
        prog="autograder" if Path(sys.argv[0]).name == "autograder" else "python -m autograder",
        description="Sandboxed autograder for the assignments of 機械学習基礎 (Keio): the assignment that "
        "grader_config.py names (lecture 3 here; AUTOGRADER_CONFIG names another course's). "
        "Run 'python -m autograder COMMAND --help' for a command's options.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is not None and name != only:
            continue
        module = importlib.import_module(module_name)
        module.add_arguments(p)
        p.set_defaults(_run=module.run, _parser=p)
    return parser


def usage_error(args, message: str):
    """A usage error through the command's argparse parser (exit 2); SystemExit(2) without one."""
    parser = getattr(args, "_parser", None)
    if parser is not None:
        parser.error(message)
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    only = first if first in COMMANDS else None
    parser = build_parser(only) if only else build_parser(only="")
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
