"""`masklet` command line: `masklet [VIDEO]` starts the app."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="masklet", description="Interactive video segmentation")
    parser.add_argument("video", nargs="?", help="video file or image folder to open")
    args = parser.parse_args(argv)
    from app.gui.main import run_app

    return run_app(args.video)


if __name__ == "__main__":
    sys.exit(main())
