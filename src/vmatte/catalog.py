"""The models and runtimes vmatte offers, by name: importable without PyTorch, so the command line
lists them in ``--help`` and checks a choice at once (see benchmarks/startup.py)."""

from __future__ import annotations

MODELS = {
    "auto": "the best model available: rvm; with --mask/--click, MatAnyone when its weights are on this machine, "
            "else rvm-target",
    "rvm-target": "offline target mode: RVM + a memory of the target(s) of --mask/--click (ships with vmatte; "
                  "people only)",
    "rvm": "Robust Video Matting, MobileNetV3 (ships with vmatte; mattes every person in frame)",
    "rvm-resnet50": "Robust Video Matting, ResNet-50 (needs rvm_resnet50.pth: --weights or download)",
    "matanyone": "MatAnyone (CVPR 2025): the target(s) of --mask (needs matanyone.pth: --weights, cache or download)",
    "matanyone2": "MatAnyone2: the MatAnyone network with newer weights (needs matanyone2.pth)",
    "videomama": "VideoMaMa (2026): one coarse mask per frame (--masks DIR) to mattes with a video diffusion prior "
                 "(needs SammyLim/VideoMaMa + the SVD VAE: --weights DIR, cache or download; a GPU)",
}
MATANYONE_MODELS = ("matanyone", "matanyone2")
BACKENDS = ("auto", "torch", "onnx")
