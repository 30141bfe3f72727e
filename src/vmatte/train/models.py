"""The networks being trained: construction, initial weights, freezing, and one forward per clip.

:class:`ClipModel` wraps MatAnyone (with the :func:`unroll` over the clip) or RVM (its own clip
forward) behind one ``forward(image, mask0, segmentation)`` so DistributedDataParallel wraps a
single module and its gradient hooks fire once per step.

BatchNorm statistics stay frozen (layers kept in eval mode while the rest trains): batches here
are a few clips, far too small for batch statistics, and the pretrained ones are better.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from vmatte import weights
from vmatte.errors import WeightsError
from vmatte.models.matanyone import MatAnyone
from vmatte.models.rvm.model import RobustVideoMatting

from .config import ModelConfig
from .unroll import unroll


@dataclass
class ClipOutput:
    alpha: Tensor  # [B,T,1,H,W]: MatAnyone's unclamped logits, RVM's clamped alpha
    fgr: Tensor | None = None  # RVM
    seg_logits: Tensor | None = None  # RVM segmentation pass
    change_prob: Tensor | None = None  # MatAnyone U_t, frames 1..T-1


class ClipModel(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.kind == "matanyone":
            self.net: nn.Module = MatAnyone(with_aux=False)  # the aux head is never run: no unused params
        else:
            self.net = RobustVideoMatting(cfg.rvm_variant)

    @property
    def encoder_prefix(self) -> str:
        return "net.pixel_encoder." if self.cfg.kind == "matanyone" else "net.backbone."

    def train(self, mode: bool = True) -> ClipModel:
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def forward(self, image: Tensor, mask0: Tensor, segmentation: bool = False) -> ClipOutput:
        if self.cfg.kind == "matanyone":
            out = unroll(self.net, image, mask0, self.cfg.mem_every, self.cfg.max_mem_frames, self.cfg.top_k)
            return ClipOutput(out.logits, change_prob=out.change_prob)
        if segmentation:  # RVM's segmentation pass: its own head, same recurrent decoder
            seg = self.net(image, segmentation_pass=True)[0]
            return ClipOutput(seg, seg_logits=seg)
        fgr, pha = self.net(image, refine=False)[:2]
        return ClipOutput(pha, fgr=fgr)


def initial_state_dict(cfg: ModelConfig) -> tuple[dict[str, Tensor] | None, str]:
    """(state_dict or None for random, source description) for ``cfg.init``."""
    if cfg.init == "random":
        return None, "random"
    if cfg.kind == "rvm":
        if cfg.init == "official":
            raise WeightsError('model.init = "official" is for MatAnyone; RVM uses "packaged" or a path')
        r = weights.resolve_rvm(cfg.rvm_variant, None if cfg.init == "packaged" else cfg.init)
        return r.state_dict, r.source
    if cfg.init == "packaged":
        raise WeightsError('model.init = "packaged" is for RVM; MatAnyone uses "official" or a path')
    r = weights.resolve_matanyone("matanyone", None if cfg.init == "official" else cfg.init)
    return r.state_dict, r.source


def build_model(cfg: ModelConfig) -> tuple[ClipModel, str]:
    model = ClipModel(cfg)
    sd, source = initial_state_dict(cfg)
    if sd is not None:
        sd = {k.removeprefix("net."): v for k, v in sd.items()}
        if cfg.kind == "matanyone":
            sd = {k: v for k, v in sd.items() if not k.startswith("aux_computer.")}
        optional = ("project_seg.",) if cfg.kind == "rvm" else ()  # the shipped ONNX has no seg head
        weights.load_into(model.net, sd, source, optional=optional)
    for name, p in model.named_parameters():
        if any(name.removeprefix("net.").startswith(f) for f in cfg.freeze):
            p.requires_grad_(False)
    return model.train(), source  # train() here also freezes BatchNorm statistics
