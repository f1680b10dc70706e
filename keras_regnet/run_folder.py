"""The output folder of a run: atomic file writes and the one-run-per-folder guard (no TensorFlow).

Training, search and study keep small files that a killed run or a concurrent
worker may read back; writing a temporary file and renaming it means a reader
sees the old file or the new one, never half of one. A folder holds one run:
`claim` refuses to mix a run with other settings into it (their results would
not be comparable, and a resume would continue the wrong run).
"""

import csv
import io
import json
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


def claim(out, identity, *, file, what, also=(), record=True):
    """Refuse `out` if it holds `what` with another `identity`; else record it in OUT/`file`.

    `identity` is the JSON-safe dict of settings that make two runs
    comparable; the folder's `file` (and any of the files in `also`, e.g. a
    finished run's summary) must hold the same values for those keys. With
    `record` the identity is written to OUT/`file` when that file is new.
    """
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r} exists and is not a folder")
    identity = json.loads(json.dumps(identity, default=str))
    for name in (file, *also):
        path = os.path.join(out, name)
        if not os.path.exists(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                found = json.load(f)
            found = {key: found.get(key) for key in identity}
        except (OSError, ValueError, AttributeError) as error:
            raise ValueError(
                f"--out {out!r} holds an unreadable {name} ({error}); choose another folder or remove it"
            ) from None
        if found != identity:
            changed = ", ".join(
                _difference(key, found[key], identity[key]) for key in identity if found[key] != identity[key]
            )
            raise ValueError(
                f"--out {out!r} holds {what} with other settings ({changed}; see {path}): use another --out folder"
            )
    path = os.path.join(out, file)
    if record and not os.path.exists(path):
        os.makedirs(out, exist_ok=True)
        write_json(path, identity)
    return identity


def _difference(key, there, here):
    """'model 'RegNetX002' there, 'RegNetX32' here' for short values; the key alone for long ones."""
    if all(isinstance(v, (str, int, float, type(None))) and len(repr(v)) <= 40 for v in (there, here)):
        return f"{key} {there!r} there, {here!r} here"
    return key
