"""``python -m stack up|down|status`` (what ``make stack`` and ``make stack-down`` run)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stack.lifecycle import describe, down, stack_dir, status, up
from stack.services import ServiceFailed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("action", choices=("up", "down", "status"))
    parser.add_argument("--project", type=Path, default=Path.cwd(), help="the checkout the stack serves")
    args = parser.parse_args(argv)
    if args.action == "up":
        try:
            print(describe(up(args.project)))
        except (ServiceFailed, FileNotFoundError, ValueError) as exc:
            print(f"make stack failed: {exc}", file=sys.stderr)
            return 1
    elif args.action == "down":
        stopped = down(args.project)
        print(f"stopped {', '.join(stopped) or 'nothing (no service was running)'}; data kept in "
              f"{stack_dir(args.project.resolve())}")
    else:
        for name, pid in status(stack_dir(args.project.resolve())).items():
            print(f"{name:24} {'running, pid ' + str(pid) if pid else 'stopped'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
