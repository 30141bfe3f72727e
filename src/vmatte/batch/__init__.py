"""Many shots: ``vmatte batch MANIFEST -o ROOT`` on this machine, on a Ray cluster, or as shards.

:func:`run_batch` validates the manifest (:mod:`.manifest`), skips shots already done, runs the
rest with :mod:`.local` worker processes or :mod:`.cluster` Ray tasks (each shot by
:func:`.shot.run_shot`, through the public :func:`vmatte.matte`), and writes ``batch.json`` and
``batch.md``. It sits above the API: nothing below imports it.
"""

from .manifest import Defaults, ManifestError, Shot, load_manifest, parse_shard, shard
from .run import BatchOptions, BatchResult, run_batch, summary_only

__all__ = [
    "BatchOptions",
    "BatchResult",
    "Defaults",
    "ManifestError",
    "Shot",
    "load_manifest",
    "parse_shard",
    "run_batch",
    "shard",
    "summary_only",
]
