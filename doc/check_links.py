"""Check the internal links of the built HTML site.

Every relative ``href`` and ``src`` in every page (not the theme's
``_static`` fragments) must name a file of the
build, and every ``#anchor`` an ``id`` in its page.  External links (with a
scheme) are not followed: CI has no internet.  ``.ci/run`` runs::

    python doc/check_links.py doc/_build/html

and fails on any broken link, printing each one with the page it is on.
"""

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a" and "name" in attrs:
            self.ids.add(attrs["name"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append(attrs[key])


def _parse(path):
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def broken_links(root):
    """Return ``(page, link, reason)`` for every broken internal link under ``root``."""
    root = Path(root).resolve()
    pages = {
        p: _parse(p)
        for p in root.rglob("*.html")
        # the theme's template fragments are not pages
        if not p.relative_to(root).parts[0].startswith("_")
    }
    broken = []
    for page, parsed in pages.items():
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path))
            target = target.resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append((page, link, "no such file"))
                continue
            if root not in target.parents and target != root:
                broken.append((page, link, "outside the site"))
                continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if unquote(parts.fragment) not in ids:
                    broken.append((page, link, "no such anchor"))
    return root, len(pages), broken


def main(argv=None):
    """Print the broken links of a built site; exit 1 if there is any."""
    argv = sys.argv[1:] if argv is None else argv
    root, n_pages, broken = broken_links(argv[0] if argv else "doc/_build/html")
    for page, link, reason in broken:
        print(f"{page.relative_to(root)}: {link} ({reason})")
    print(f"{n_pages} pages, {len(broken)} broken internal links")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
