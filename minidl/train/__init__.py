"""Training: the loop (fit, evaluate), atomic checkpoints, reports and the NIN recipe."""
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from .loop import EpochState, Interrupted, TrainingDiverged, evaluate, fit, train_epoch

__all__ = ["fit", "evaluate", "train_epoch", "EpochState", "TrainingDiverged", "Interrupted",
           "save_checkpoint", "load_checkpoint", "CheckpointError"]
