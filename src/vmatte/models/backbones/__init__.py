"""Feature encoders (backbones) for the matting networks."""

from .mobilenetv3 import MobileNetV3LargeEncoder
from .resnet import ResNet50Encoder

__all__ = ["MobileNetV3LargeEncoder", "ResNet50Encoder"]
