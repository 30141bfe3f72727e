"""Point-prompt segmenters (SAM, SAM 2) that turn clicks into a target mask."""
