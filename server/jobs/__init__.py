"""Where jobs execute: the Runner seam and its runners, the job queue and the job lifecycle."""

from .lifecycle import Job, JobLifecycle
from .local import LocalProcessRunner
from .runner import Runner, WorkerMessage, exit_reason
from .scheduler import AdmissionError, JobQueue, Limits, QueueFull, QuotaExceeded
from .thread import ThreadRunner

__all__ = ["Job", "JobLifecycle", "LocalProcessRunner", "Runner", "WorkerMessage",
           "exit_reason", "AdmissionError", "JobQueue", "Limits", "QueueFull", "QuotaExceeded",
           "ThreadRunner"]
