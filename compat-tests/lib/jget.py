"""Prints one value from the JSON document on stdin: jget.py PATH.

PATH is dot-separated keys and list indexes (`Versions.0.VersionId`); `#`
prints a list's length. Strings print raw, anything else as JSON.
"""

import json
import sys


def main(path):
    value = json.load(sys.stdin)
    for part in filter(None, path.split(".")):
        if part == "#":
            value = len(value)
        elif isinstance(value, list):
            value = value[int(part)]
        else:
            value = value.get(part)
    print(value if isinstance(value, str) else json.dumps(value, sort_keys=True))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "")
