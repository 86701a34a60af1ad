"""Run every benchmark module in bench/ (``make bench``), each in its own process.

Prints one JSON line per figure (the first describes the machine) and keeps a copy under
``bench/out/results-<time>.jsonl``. ``--quick`` runs small sizes (a smoke test, not
figures to quote); ``--only record`` runs one module; other arguments go to the modules.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import _common as c


def modules() -> list[str]:
    return sorted(p.stem for p in c.BENCH_DIR.glob("*.py")
                  if not p.stem.startswith("_") and p.stem != "run")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", choices=modules(),
                    help="run this module only (repeatable)")
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    args, rest = ap.parse_known_args(argv)
    if rest and len(args.only or []) != 1:
        ap.error(f"extra arguments {rest} need exactly one --only module")
    results = c.out_dir() / f"results-{time.strftime('%Y%m%d-%H%M%S')}.jsonl"
    failed = []
    with open(results, "w") as keep:
        keep.write(c.emit_line(c.machine_line()))
        for name in args.only or modules():
            cmd = [sys.executable, str(c.BENCH_DIR / f"{name}.py"), *rest]
            if args.quick:
                cmd.append("--quick")
            c.note(f"running {name}")
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=c.BENCH_DIR)
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                keep.write(line)
            if proc.wait() != 0:
                failed.append(name)
    c.note(f"figures kept in {results}")
    if failed:
        c.note(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
