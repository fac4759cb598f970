"""The command line shared by the package builders (build_ipk, build_apk, build_feed)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

Builder = Callable[..., list[Path]]


def run(name: str, doc: str | None, default_out: Path, build: Builder,
        errors: tuple[type[Exception], ...], argv: list[str] | None = None) -> int:
    """Parse --out/--icmplib-src/--cache, build, print the paths; exit 1 on an error."""
    parser = argparse.ArgumentParser(prog=name, description=(doc or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=default_out,
                        help=f"output directory (default: {default_out.name})")
    parser.add_argument("--icmplib-src", type=Path,
                        help="icmplib sdist, wheel or source directory "
                             "(default: the sdist in build/cache, fetched with pip)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="download cache (default: build/cache)")
    args = parser.parse_args(argv)
    try:
        for path in build(args.out, icmplib_src=args.icmplib_src, cache=args.cache):
            print(path)
    except errors as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    return 0
