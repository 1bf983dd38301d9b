"""li2core: train and measure 2-layer networks on group multiplication (the Li₂ theory)."""

from .config import RunConfig
from .data import GroupDataset, make_dataset
from .events import Finished, RunStarted, Snapshot, StageChange, StepMetrics
from .groups import Group, GroupError, group_from_table, parse_group
from .train import train

__all__ = [
    "RunConfig", "GroupDataset", "make_dataset", "Finished", "RunStarted", "Snapshot",
    "StageChange", "StepMetrics", "Group", "GroupError", "group_from_table", "parse_group", "train",
]
