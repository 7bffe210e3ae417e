"""A backend for the worker tests (tests/test_workers.py): the mnist1d-arch table, which appends every configuration
it is asked to evaluate to a log file (one line, one write: appends from several processes do not interleave) and,
after its first ``fast`` answers, sleeps ``delay`` seconds before each, so a test can count evaluations across
processes and kill a worker in the middle of one."""

import time

from trends.automl.backends import TableBackend
from trends.automl.space import get_space
from trends.automl.table import config_json


class LoggedSlowBackend(TableBackend):
    def __init__(self, log: str, fast: int = 0, delay: float = 0.0) -> None:
        super().__init__(get_space("mnist1d-arch"))
        self.log, self.fast, self.delay = log, fast, delay
        self.answered = 0

    def evaluate(self, config):
        with open(self.log, "a", encoding="utf-8") as file:
            file.write(config_json(self.space.canonical(config)) + "\n")
        if self.answered >= self.fast:
            time.sleep(self.delay)
        self.answered += 1
        return super().evaluate(config)
