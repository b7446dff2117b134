"""Command line: ``python -m mmunsup3d {list,download}``.

``python -m mmunsup3d list`` prints the zoo names, one per line.
``python -m mmunsup3d download NAME_OR_URL [--cache-dir DIR] [--timeout S] [--deadline S]
[--max-bytes N]`` downloads (or reuses from the cache) a sha256-verified checkpoint and prints
its local path.
"""
import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog='python -m mmunsup3d',
                                     description='mmunsup3d model zoo tools')
    sub = parser.add_subparsers(dest='command', required=True)
    sub.add_parser('list', help='list the model zoo names')
    dl = sub.add_parser('download', help='download a verified checkpoint, print its path')
    dl.add_argument('name', help='zoo name or http(s):// / file:// URL')
    dl.add_argument('--cache-dir', default=None,
                    help='cache directory (default: $MMUNSUP3D_CACHE_DIR or '
                    '~/.cache/mmunsup3d/checkpoints)')
    dl.add_argument('--timeout', type=float, default=60.0,
                    help='seconds one network operation (connect, one read) may take '
                    '(default: 60)')
    dl.add_argument('--deadline', type=float, default=None,
                    help='seconds the whole download may take (default: '
                    '$MMUNSUP3D_DOWNLOAD_DEADLINE or 600)')
    dl.add_argument('--max-bytes', type=int, default=None,
                    help='largest accepted download when its size is unknown (default: '
                    '$MMUNSUP3D_DOWNLOAD_MAX_BYTES or 1 GiB)')
    args = parser.parse_args(argv)

    from .utils.zoo import download_checkpoint, list_models
    try:
        if args.command == 'list':
            for name in list_models():
                print(name)
        else:
            print(download_checkpoint(args.name, cache_dir=args.cache_dir, timeout=args.timeout,
                                      deadline=args.deadline, max_bytes=args.max_bytes))
    except (KeyError, ValueError, RuntimeError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
