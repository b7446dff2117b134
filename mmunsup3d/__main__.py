"""Command line: ``python -m mmunsup3d {list,download,convert-checkpoint}``.

``python -m mmunsup3d list [--names]`` prints the zoo (recommended model first): name, alias,
N-MPJPE / P-MPJPE of its metafile, and whether a verified copy is in the download cache
(``--names``: the names only, one per line).
``python -m mmunsup3d download NAME_OR_URL [--cache-dir DIR] [--timeout S] [--deadline S]
[--max-bytes N]`` downloads (or reuses from the cache) a sha256-verified checkpoint and prints
its local path.
``python -m mmunsup3d convert-checkpoint IN OUT --trust [--drop-unsupported]`` re-saves a
checkpoint you trust that the safe loader refuses (see
:mod:`mmunsup3d.utils.checkpoint_convert`).
"""
import argparse
import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(prog='python -m mmunsup3d',
                                     description='mmunsup3d model zoo tools')
    sub = parser.add_subparsers(dest='command', required=True)
    ls = sub.add_parser('list', help='list the model zoo (name, alias, metrics, cached)')
    ls.add_argument('--names', action='store_true', help='print only the names')
    ls.add_argument('--cache-dir', default=None, help='download cache to check')
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
    _add_convert_parser(sub)
    args = parser.parse_args(argv)

    from .utils.zoo import download_checkpoint, list_models, zoo_table
    try:
        if args.command == 'convert-checkpoint':
            return _convert(args)
        if args.command == 'list' and args.names:
            for name in list_models():
                print(name)
        elif args.command == 'list':
            print(_format_table(zoo_table(args.cache_dir)))
        else:
            print(download_checkpoint(args.name, cache_dir=args.cache_dir, timeout=args.timeout,
                                      deadline=args.deadline, max_bytes=args.max_bytes))
    except (KeyError, ValueError, RuntimeError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f'error: {msg}', file=sys.stderr)
        return 1
    return 0


def _add_convert_parser(sub) -> None:
    cv = sub.add_parser('convert-checkpoint',
                        help='re-save a trusted checkpoint that the safe loader refuses')
    cv.add_argument('src', help='the checkpoint (unpickled unrestricted: only files you trust)')
    cv.add_argument('dst', help='the new, safely loadable file (must not exist)')
    cv.add_argument('--trust', action='store_true',
                    help='confirm that SRC may run code when unpickled (required)')
    cv.add_argument('--drop-unsupported', action='store_true',
                    help='leave out objects outside the allow-list instead of failing')


def _convert(args) -> int:
    """``convert-checkpoint``: refuse without ``--trust``; report what was left out."""
    if not args.trust:
        print(f'error: converting {args.src} unpickles it with weights_only=False, which runs '
              'any code the file carries; pass --trust only for a file you trust',
              file=sys.stderr)
        return 2
    from .utils.checkpoint_convert import convert_trusted_checkpoint
    for line in convert_trusted_checkpoint(args.src, args.dst, args.drop_unsupported):
        print(f'left out {line}', file=sys.stderr)
    print(args.dst)
    return 0


def _format_table(rows: List[dict]) -> str:
    """Aligned text table of :func:`mmunsup3d.utils.zoo.zoo_table` rows."""
    head = ('name', 'alias', 'N-MPJPE', 'P-MPJPE', 'cached', 'committed')
    body = []
    for i, r in enumerate(rows):
        m = r['metrics']
        body.append((r['name'] + (' (recommended)' if i == 0 else ''),
                     # ',' without a space keeps one whitespace-free cell per column
                     ','.join(r['aliases']) or '-',
                     f"{m['N-MPJPE']:.1f}" if 'N-MPJPE' in m else '-',
                     f"{m['P-MPJPE']:.1f}" if 'P-MPJPE' in m else '-',
                     'yes' if r['cached'] else 'no', 'yes' if r['committed'] else 'no'))
    widths = [max(len(x[c]) for x in [head] + body) for c in range(len(head))]
    lines = ['  '.join(x[c].ljust(widths[c]) for c in range(len(head))).rstrip()
             for x in [head] + body]
    return '\n'.join(lines + ['(mm on the embedded motion capture, tail split; cached: a verified '
                               'copy in the download cache; committed: a copy in this checkout)'])


if __name__ == '__main__':
    sys.exit(main())
