"""Reading the status page as a person does: its text, and each check row's cells."""

from __future__ import annotations

from html.parser import HTMLParser


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.rows: dict[str, list[str]] = {}
        self.classes: dict[str, str] = {}
        self._row: str | None = None
        self._skip = 0  # inside <style> or <title> of the head
        self._glue = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag in ("style", "head"):
            self._skip += 1
        if tag == "tr" and values.get("id"):
            self._row = values["id"] or ""
            self.rows[self._row] = []
            self.classes[self._row] = values.get("class") or ""
        if tag == "td" and self._row is not None:
            self.rows[self._row].append("")
        if tag == "wbr":
            self._glue = True  # a break opportunity inside a word, not a space

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "head"):
            self._skip -= 1
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        glue, self._glue = self._glue, False
        if glue and self.text:
            self.text[-1] += data
        else:
            self.text.append(data)
        if self._row is not None and self.rows[self._row]:
            joined = self.rows[self._row][-1] + ("" if glue else " ") + data
            self.rows[self._row][-1] = " ".join(joined.split())


def read(page: str) -> _Reader:
    reader = _Reader()
    reader.feed(page)
    return reader


def text(page: str) -> str:
    """The page's visible text (SVG titles included), whitespace collapsed."""
    return " ".join(" ".join(read(page).text).split())


def rows(page: str) -> dict[str, list[str]]:
    """Each check row (by its id) -> the text of its cells."""
    return read(page).rows
