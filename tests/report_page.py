"""Reading a report page back (``index.html`` of ``jaxunc.report``) for the tests:
an independent parser, so that the tests check the page, not the writer's model."""

from __future__ import annotations

import dataclasses
from html.parser import HTMLParser
from pathlib import Path


@dataclasses.dataclass
class Page:
    """What a report page shows: its images' sources, and per section its title
    (``<h2>`` inside ``<section>``) and its finding (``<p class="finding">``)."""

    images: list[str] = dataclasses.field(default_factory=list)
    sections: dict[str, str] = dataclasses.field(default_factory=dict)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self._in_section = False
        self._capture: str | None = None
        self._text: list[str] = []
        self._title = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.page.images.append(attrs["src"])
        elif tag == "section":
            self._in_section = True
        elif self._in_section and tag == "h2":
            self._capture, self._text = "title", []
        elif self._in_section and tag == "p" and attrs.get("class") == "finding":
            self._capture, self._text = "finding", []

    def handle_endtag(self, tag):
        if tag == "section":
            self._in_section = False
        elif self._capture == "title" and tag == "h2":
            self._title = "".join(self._text)
            self._capture = None
        elif self._capture == "finding" and tag == "p":
            self.page.sections[self._title] = "".join(self._text)
            self._capture = None

    def handle_data(self, data):
        if self._capture:
            self._text.append(data)


def read_page(path: Path) -> Page:
    reader = _Reader()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader.page


def missing_images(path: Path) -> list[str]:
    """The images the page at ``path`` references that do not exist beside it."""
    page = read_page(path)
    return [src for src in page.images if not (path.parent / src).is_file()]


def unreferenced_figures(path: Path) -> list[str]:
    """The PNG files under the page's folder that the page does not show."""
    page = read_page(path)
    shown = {(path.parent / src).resolve() for src in page.images}
    return [
        str(png.relative_to(path.parent))
        for png in sorted(path.parent.rglob("*.png"))
        if png.resolve() not in shown
    ]
