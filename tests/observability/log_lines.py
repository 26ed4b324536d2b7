"""Reading what the shop's log handler wrote, in either format (LOG_FORMAT=console or json), the
way an operator reads a terminal: one line at a time."""

import json
import re
from dataclasses import dataclass

FORMATS = ("console", "json")
# The lines, (level, event up to its duration), of a credit-only place-order saga whose
# authorize_payment failed once: the failure a warning, the rest info (a step passed over has none).
RETRIED_ONCE_THEN_COMPLETED = [
    ("info", "action hold_funds attempt 1: SUCCEEDED"),
    ("warning", "action authorize_payment attempt 1: FAILED"),
    ("info", "action authorize_payment attempt 2: SUCCEEDED"),
    ("info", "action confirm_order attempt 1: SUCCEEDED"),
    ("info", "action capture_payment attempt 1: SUCCEEDED"),
    ("info", "action consume_funds attempt 1: SUCCEEDED"),
    ("info", "saga place_order COMPLETED"),
]
# structlog's ConsoleRenderer: "2026-12-07T16:42:45.209Z [info     ] event text   [logger] key=value ..."
CONSOLE = re.compile(r"^\S+ \[(?P<level>\w+)\s*\] (?P<event>.*?)\s+\[(?P<logger>[\w.]+)\](?P<pairs>.*)$")
PAIR = re.compile(r"(\w+)=(\S+)")


@dataclass(frozen=True)
class Line:
    level: str
    event: str
    logger: str
    fields: dict[str, str]


def parse(format: str, text: str) -> Line | None:
    """The line as the shop's formatter wrote it, or None for anything else (another format)."""
    if format == "json":
        try:
            record = json.loads(text)
        except ValueError:
            return None
        if not isinstance(record, dict) or not {"level", "event", "logger"} <= set(record):
            return None
        fields = {name: str(value) for name, value in record.items() if name not in ("level", "event", "logger")}
        return Line(record["level"], str(record["event"]), record["logger"], fields)
    match = CONSOLE.match(text)
    if match is None:
        return None
    return Line(match["level"], match["event"], match["logger"], dict(PAIR.findall(match["pairs"])))
