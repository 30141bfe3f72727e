"""Training data: sources on disk, augmentation, samples."""
