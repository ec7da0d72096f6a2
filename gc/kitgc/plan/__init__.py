"""The pure core: inventory + references + policy -> decisions, each with its reasons.

``planner`` orders the work, ``kits`` decides IntegrationKits (base-image fixed point),
``protect`` finds what refers to each manifest, ``reasons`` holds the evidence as data and
``text`` words it; ``guards`` are the conditions under which nothing may be deleted.
"""

from kitgc.plan.planner import plan

__all__ = ["plan"]
