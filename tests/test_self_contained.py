"""The code, tests and benchmarks stand on their own.

They state their points themselves (or point inside the repository), never
"see" a design document or a folder that a clone of the repository lacks.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# pointers to a design document, to a sibling folder of the checkout and to
# absolute paths of one machine, none of which is part of the repository
OUTSIDE = ("DESIGN", "../shared", "/work/")


def _text_files():
    yield ROOT / "README.rst", (ROOT / "README.rst").read_text()
    for top in ("skdance", "tests", "benchmarks", "doc", "examples"):
        for path in sorted((ROOT / top).rglob("*")):
            # caches, doc builds and the gallery the build writes
            skipped = {"__pycache__", "_build", "generated", "auto_examples"}
            if not path.is_file() or skipped & set(path.parts):
                continue
            if path == Path(__file__).resolve():  # names the pointers above
                continue
            data = path.read_bytes()
            if b"\0" not in data:  # data files (h5ad, npz, png) are binary
                yield path, data.decode("utf-8", errors="replace")


def test_text_files_are_found():
    names = {path.name for path, _ in _text_files()}
    assert {
        "README.rst",
        "api.rst",
        "_instances.py",
        "conftest.py",
        "spatial_domain.py",
    } <= names


def test_no_pointer_outside_the_repository():
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path, text in _text_files()
        for number, line in enumerate(text.splitlines(), 1)
        if any(pointer in line for pointer in OUTSIDE)
    ]
    assert not found, "state the point here instead of pointing at:\n" + "\n".join(
        found
    )
