"""HTML → Markdown-ish text: headings kept, scripts, styles and navigation dropped.

Tables become one line per row with the column names repeated (`Name: bytea | Size: …`),
so a row still makes sense when the splitter separates it from its table.
"""

import re
from collections.abc import Iterator

import lxml.html
from lxml.etree import ParserError
from lxml.html import HtmlElement

_DROP = ("script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg", "iframe")
_DROP_CLASSES = ("navheader", "navfooter", "navigation", "breadcrumb", "toc", "sidebar")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PARAGRAPHS = {"p", "li", "dt", "dd", "blockquote", "caption", "figcaption", "address", "summary"}
_SPACES = re.compile(r"\s+")
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")


def html_to_markdown(html: str) -> tuple[str | None, str]:
    """The page title (if any) and the page as Markdown-ish text."""
    try:
        # Decoded text in, so libxml2 never guesses a charset (lxml refuses text that still
        # declares an encoding, as XHTML does); deep nesting kept, not dropped.
        text = _XML_DECLARATION.sub("", html, count=1)
        root = lxml.html.document_fromstring(text, parser=lxml.html.HTMLParser(huge_tree=True))
    except (ParserError, ValueError):
        return None, ""
    title_element = root.find(".//title")
    title = _text(title_element) if title_element is not None else None
    _strip_chrome(root)
    body = root.find("body")
    blocks = _blocks(body if body is not None else root)
    return title or None, "\n\n".join(block for block in blocks if block)


def _strip_chrome(root: HtmlElement) -> None:
    doomed = list(root.iter(*_DROP))
    doomed += [el for el in root.iter() if isinstance(el.tag, str) and _has_class(el, _DROP_CLASSES)]
    doomed += [el for el in root.iter() if el.get("role") == "navigation" or el.get("hidden") is not None]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()


def _has_class(element: HtmlElement, names: tuple[str, ...]) -> bool:
    classes = (element.get("class") or "").split()
    return any(name in classes for name in names)


def _blocks(element: HtmlElement) -> Iterator[str]:
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _HEADINGS:
        yield "#" * _HEADINGS[tag] + " " + _text(element)
    elif tag == "pre":
        yield "```\n" + (element.text_content() or "").strip("\n") + "\n```"
    elif tag == "table":
        yield from _table(element)
    elif tag in _PARAGRAPHS:
        yield _text(element)
    else:
        if element.text and element.text.strip():
            yield _SPACES.sub(" ", element.text).strip()
        for child in element:
            yield from _blocks(child)
            if child.tail and child.tail.strip():
                yield _SPACES.sub(" ", child.tail).strip()


def _table(table: HtmlElement) -> Iterator[str]:
    rows = [[_text(cell) for cell in row.iter("td", "th")] for row in table.iter("tr")]
    rows = [row for row in rows if any(row)]
    if not rows:
        return
    header, *body = rows if table.find(".//th") is not None and len(rows) > 1 else ([], *rows)
    for row in body:
        if header and len(header) == len(row):
            yield " | ".join(f"{name}: {value}" for name, value in zip(header, row, strict=True) if value)
        else:
            yield " | ".join(value for value in row if value)


def _text(element: HtmlElement) -> str:
    return _SPACES.sub(" ", element.text_content() or "").strip()
