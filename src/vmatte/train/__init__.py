"""Training and fine-tuning of MatAnyone and RVM on torchrun DDP (see docs/training.md)."""
