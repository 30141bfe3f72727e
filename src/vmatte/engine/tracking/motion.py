"""Motion between consecutive frames: dense optical flow (OpenCV DIS) on the working maps."""

from __future__ import annotations

import cv2
import numpy as np


class MotionField:
    """Warps maps of the previous frame onto the current one.

    :meth:`update` takes the current frame's grey working image and computes the backward flow
    (current -> previous): for each current pixel, where it was. :meth:`warp` samples previous
    maps there (bilinear), so a warped map is defined at every current pixel (no holes).
    """

    def __init__(self, preset: int = 1) -> None:
        self._dis = cv2.DISOpticalFlow_create(preset)
        self._previous: np.ndarray | None = None
        self._map: tuple[np.ndarray, np.ndarray] | None = None
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def reset(self) -> None:
        self._previous = None
        self._map = None

    def state(self) -> dict:
        """The previous frame and its flow map (DIS keeps nothing between calls)."""
        return {"previous": self._previous, "map": None if self._map is None else list(self._map)}

    def load_state(self, state: dict) -> None:
        self._previous = state["previous"]
        self._map = None if state["map"] is None else tuple(state["map"])

    def update(self, grey: np.ndarray) -> None:
        h, w = grey.shape
        if self._grid is None or self._grid[0].shape != (h, w):
            xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
            self._grid = (xs, ys)
        if self._previous is None or self._previous.shape != grey.shape:
            self._map = None
        else:
            flow = self._dis.calc(grey, self._previous, None)
            self._map = (self._grid[0] + flow[..., 0], self._grid[1] + flow[..., 1])
        self._previous = grey

    def warp(self, maps: np.ndarray) -> np.ndarray:
        """``maps`` [K, h, w] float32 of the previous frame -> the same, aligned to the current."""
        if self._map is None:
            return maps
        out = np.empty_like(maps)
        for k in range(maps.shape[0]):  # cv2.remap takes at most 4 channels: one map at a time
            out[k] = cv2.remap(maps[k], self._map[0], self._map[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out
