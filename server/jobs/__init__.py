"""Where runs execute: the Runner seam, local worker processes, and the job queue."""

from .local import LocalProcessRunner
from .runner import Runner, WorkerMessage, exit_reason
from .scheduler import AdmissionError, JobQueue, QueueFull, QuotaExceeded

__all__ = ["LocalProcessRunner", "Runner", "WorkerMessage", "exit_reason", "AdmissionError",
           "JobQueue", "QueueFull", "QuotaExceeded"]
