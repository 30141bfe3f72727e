"""Evaluation: metrics (``metrics``), synthetic benchmark clips (``compose``), model scoring (``quality``)."""
