#!/usr/bin/env python3
"""Re-read every file under a folder with pydicom, as an independent check of our outputs.

Usage: pydicom_check.py FOLDER

Each file is read with ``pydicom.dcmread`` (no ``force``: a file without a valid
preamble and file meta fails) and every element is walked, sequences included, so
that values are decoded as pydicom decodes them. Pixel data is not decoded.

Prints one JSON object on stdout: {"files": N, "ok": N, "failed": [{"path", "error"}],
"warnings": N}
with paths relative to FOLDER. Also prints each failure as ``path: error`` on
stderr, and exits 1 if any file failed, 2 on bad usage. pydicom's warnings (about
values that do not fit their VR) are counted, not printed: their text quotes values.
"""

import json
import os
import sys
import warnings

import pydicom


def walk(dataset):
    """Touches every element so that pydicom converts its raw value."""
    count = 0
    for element in dataset:
        count += 1
        if element.VR == "SQ":
            for item in element.value:
                count += walk(item)
        else:
            _ = element.value
    return count


def check(path):
    dataset = pydicom.dcmread(path)
    walk(dataset.file_meta)
    walk(dataset)


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: pydicom_check.py FOLDER", file=sys.stderr)
        return 2
    root = argv[1]
    files = 0
    failed = []
    warned = 0
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = os.path.join(folder, name)
            files += 1
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    check(path)
                warned += len(caught)
            except Exception as error:  # every failure is reported, whatever its kind
                rel = os.path.relpath(path, root)
                message = f"{type(error).__name__}: {error}"
                failed.append({"path": rel, "error": message})
                print(f"{rel}: {message}", file=sys.stderr)
    json.dump({"files": files, "ok": files - len(failed), "failed": failed, "warnings": warned}, sys.stdout, indent=1)
    print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
