"""Run records on disk: atomic JSON/CSV writes and the error of a trial row (no TensorFlow).

Training, search and study all keep small files that a killed run or a
concurrent worker may read back; writing a temporary file and renaming it
means a reader sees the old file or the new one, never half of one.
"""

import csv
import io
import json
import math
import os


def write_text(path, text):
    """Write `text` to `path` (UTF-8), atomically: a temporary file, then a rename."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def write_json(path, data):
    """Write `data` as indented JSON to `path`, atomically."""
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_csv(path, fields, rows):
    """Write dict `rows` with columns `fields` to `path`, atomically (None -> empty cell)."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, text.getvalue())


def val_error(record):
    """Final-epoch validation error of a trials.csv row or record; None if it did not complete."""
    value = record.get("val_error")
    if value in (None, ""):
        return None
    value = float(value)
    return None if math.isnan(value) else value
