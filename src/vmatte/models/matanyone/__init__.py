"""MatAnyone (CVPR 2025): target-specified video matting with consistent memory propagation.

- :class:`MatAnyone` - the network, single-target official key layout (per-stage functions;
  the streaming memory is in :mod:`vmatte.engine.matanyone`).
- :class:`ChangeProbabilityHead` - the change-probability head of region-adaptive fusion.
"""

from .change_probability import ChangeProbabilityHead
from .network import MatAnyone

__all__ = ["ChangeProbabilityHead", "MatAnyone"]
