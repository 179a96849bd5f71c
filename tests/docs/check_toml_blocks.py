#!/usr/bin/env python3
"""Every ```toml block of the given Markdown files passes `procsup check` with no warning
(issue 16: the examples in docs/ are run by a test), except that an example's program binary
(/usr/local/bin/api) need not exist on the machine that runs the test.

usage: check_toml_blocks.py PROCSUP_BINARY FILE.md..."""
import os
import re
import subprocess
import sys
import tempfile


def main():
    procsup, files = sys.argv[1], sys.argv[2:]
    failed = 0
    count = 0
    for md in files:
        with open(md) as f:
            text = f.read()
        for m in re.finditer(r"^```toml\n(.*?)^```", text, re.M | re.S):
            count += 1
            line = text[: m.start()].count("\n") + 1
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "block.toml")
                with open(path, "w") as f:
                    f.write(m.group(1))
                r = subprocess.run([procsup, "check", path], capture_output=True, text=True, timeout=30)
                warnings = [w for w in r.stderr.splitlines() if w.startswith("warning:")
                            and not re.search(r"\.command: .*: No such file or directory \(not an error", w)]
                if r.returncode != 0 or warnings:
                    failed += 1
                    print(f"{md}:{line}: the toml block does not pass procsup check:\n{r.stdout}{r.stderr}", file=sys.stderr)
    if count == 0:
        print("check_toml_blocks: no toml block found", file=sys.stderr)
        sys.exit(1)
    print(f"check_toml_blocks: {count - failed} of {count} blocks pass")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
