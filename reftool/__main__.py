"""python -m reftool

SIGTERM is made an interrupt before anything is imported, so that a run stopped in its first
milliseconds exits 130 like one stopped later (SPEC [tool.exit-codes]), not by the signal.
"""

import signal
import sys


def _interrupt(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: the tool is already on its way out
    raise KeyboardInterrupt


signal.signal(signal.SIGTERM, _interrupt)
try:
    from .cli import entrypoint
except KeyboardInterrupt:
    sys.stderr.write("reftool: interrupted while starting\n")
    sys.exit(130)
entrypoint()
