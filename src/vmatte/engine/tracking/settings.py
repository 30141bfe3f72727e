"""Settings of the offline target mode (RVM + a memory of the target), as one dataclass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TargetSettings:
    # Long side of the working maps (target probabilities, optical flow). Half of 854x480 DAVIS
    # frames: flow there costs ~10 ms on 2 cores and the maps only decide *which* pixels belong
    # to the target; edges and hair come from RVM's full-resolution alpha.
    work_size: int = 432
    # OpenCV DIS preset (0 ultrafast, 1 fast, 2 medium); fast measured as good as medium here.
    flow_preset: int = 1
    # Working memory: a frame is memorised every ``mem_every`` frames; the first frame (and every
    # keyframe mask) is permanent, the rest a FIFO of ``max_mem_frames`` frames.
    mem_every: int = 5
    max_mem_frames: int = 8
    top_k: int = 20  # memory tokens read per query token (top-k softmax, as XMem/Cutie/MatAnyone)
    temperature: float = 0.05  # of the cosine similarities fed to the softmax
    # Width (working px) of the band around the propagated target where the appearance readout
    # may overrule the previous frame's value (region-adaptive fusion; core keeps the warp).
    band: int = 9
    # A person region (RVM alpha >= 0.5, connected) whose mean target probability is at least
    # ``keep_fraction``, with no one else in it, is the target as a whole (RVM's shape fixes the
    # warp's lag); one below ``min_fraction`` is not the target (see assign.assign_regions).
    keep_fraction: float = 0.3
    min_fraction: float = 0.02
    # ... and only when the region lies mostly (``inside_fraction``) in the target's predicted
    # position (its core from motion + memory, widened by ``reach`` px) and is at most
    # ``merge_growth`` times its predicted extent (its area when last seen whole); otherwise the
    # target keeps only the part in its predicted position. Where people touch, pixels go to the
    # nearest core within ``split_reach`` px.
    inside_fraction: float = 0.5
    merge_growth: float = 1.6
    reach: int = 6
    split_reach: int = 24
    # Excluded parts of a mask's person regions thinner than this (px, working size) are slivers
    # along the mask's edge, not someone else.
    sliver_px: int = 2
    # A mask holds something besides its target's person part (a horse, a bike, a cart: RVM's
    # pieces of it become the target's) when its area exceeds that part's by this share.
    held_margin: float = 0.25
    # People first seen after the mask's frame become bystanders when at least this share of the
    # working frame; at most ``max_bystanders`` are tracked.
    bystander_area: float = 0.002
    max_bystanders: int = 16
    # A target with no region left is looked for again among the free person regions by its
    # colours (re-identification, see colour.py): similarity to its mask's colours at least:
    reacquire_similarity: float = 0.5  # Bhattacharyya coefficient of the colours, at least
    # A target whose matched area falls under this fraction of its size while someone else holds
    # its predicted position is taken as hidden (occluded) and dropped until its colours are
    # found again.
    hidden_fraction: float = 0.35
    # RVM's recurrent state starts cold on the video's first frame; that frame is run this many
    # more times so the state settles (see TargetTracker._settle). A target's mask is no person
    # when cold RVM saw a person in at least ``fade_seen`` of it and the settled state keeps
    # under ``fade_kept`` of that (a dog: it keeps 36%; people: 84-100%, DAVIS, 6 passes).
    warmup: int = 6
    fade_seen: float = 0.02
    fade_kept: float = 0.5
    edge_px: int = 3  # the target's map is widened this much before it gates RVM's soft alpha
