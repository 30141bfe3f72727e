"""The registry's loader of ``rvm-target``: the target tracker on the RVM weights that ship."""

from __future__ import annotations

from ...errors import VmatteError
from ...io.masks import mask_schedule, schedule_ids
from ..device import resolve_device
from ..rvm import build_rvm, check_rvm_options
from .tracker import TargetTracker


def load_target(spec, options, note: str = "") -> TargetTracker:
    if options.mask is None and not options.keyframes:
        raise VmatteError(f"--model {spec.name} follows the target(s) of a mask: give --mask PATH or --click X,Y")
    if options.backend == "onnx":
        raise VmatteError(f"{spec.name} runs RVM on PyTorch (it reads RVM's features); use --backend torch or auto")
    rvm_settings = check_rvm_options(options)
    schedule = mask_schedule(options.mask, options.keyframes)  # a bad mask fails before the weights load
    dev = resolve_device(options.device)
    net, source, licence = build_rvm("mobilenetv3", options.weights, dev)
    ids = schedule_ids(schedule)
    who = f"{len(ids)} targets (ids {', '.join(map(str, ids))})" if len(ids) > 1 else "1 target"
    description = (
        f"{spec.name} (offline target mode: RVM + target memory + optical flow){note} on "
        f"PyTorch/{dev.type}, {who}, people only (RVM weights: {source}, {licence})"
    )
    return TargetTracker(net, dev, keyframes=dict(schedule), rvm_settings=rvm_settings, description=description)
