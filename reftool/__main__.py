"""python -m reftool"""

from .cli import entrypoint

entrypoint()
