"""python -m reftool

SIGTERM is made an interrupt before anything is imported, so that a run stopped in its first
milliseconds exits 130 like one stopped later (SPEC [tool.exit-codes]), not by the signal.
A no-op `plan` whose remembered answer still holds is answered before the rest of the tool
is imported (reftool/planmemo.py).
"""

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the tool is already on its way out
    raise KeyboardInterrupt


def main() -> None:
    """The `reftool` command (the console script, and `python -m reftool`)."""
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        from .planmemo import answer
        code = answer(sys.argv[1:], sys.stdout)
        if code is not None:
            sys.exit(code)
        from .cli import entrypoint
    except KeyboardInterrupt:
        sys.stderr.write("reftool: interrupted while starting\n")
        sys.exit(130)
    entrypoint()


if __name__ == "__main__":
    main()
