"""HTML → Markdown-ish text: headings kept, scripts, styles and navigation dropped.

Tables become one line per row with the column names repeated (`Name: bytea | Size: …`),
so a row still makes sense when the splitter separates it from its table. A table that
holds headings or other tables lays out a page rather than data: it is read like any other
container (reading it as rows would repeat every nested table's text at each level).

The tree is walked with a stack of its own, not recursion: a page nested a thousand
elements deep is read like any other (libxml2 keeps 2048 levels; it drops what is deeper).
"""

import re
from collections.abc import Iterator

import lxml.html
from lxml.etree import ParserError
from lxml.html import HtmlElement

# Forms stay (some frameworks wrap a whole page in one); their controls go. A `header` goes
# only at page level: inside an article or section it holds that part's heading.
_DROP = ("script", "style", "noscript", "template", "nav", "footer", "aside", "svg", "iframe")
_DROP_CONTROLS = ("select", "textarea", "button")
_KEEP_HEADER_IN = {"article", "main", "section"}
_DROP_CLASSES = ("navheader", "navfooter", "navigation", "breadcrumb", "toc", "sidebar")
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PARAGRAPHS = {"p", "li", "dt", "dd", "blockquote", "caption", "figcaption", "address", "summary"}
_LAYOUT = ("table", *_HEADINGS)  # what a data table's cells never hold
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
    doomed = list(root.iter(*_DROP, *_DROP_CONTROLS))
    doomed += [el for el in root.iter() if isinstance(el.tag, str) and _has_class(el, _DROP_CLASSES)]
    doomed += [el for el in root.iter() if el.get("role") == "navigation" or el.get("hidden") is not None]
    for element in doomed:
        if element.getparent() is not None:
            element.drop_tree()


def _has_class(element: HtmlElement, names: tuple[str, ...]) -> bool:
    classes = (element.get("class") or "").split()
    return any(name in classes for name in names)


def _blocks(root: HtmlElement) -> Iterator[str]:
    # What is left to read, the next on top; each element with whether it is in an article
    # or a section (where a `header` is kept).
    pending: list[tuple[HtmlElement, bool] | str] = [(root, False)]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            yield item
            continue
        element, in_part = item
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in _HEADINGS:
            yield "#" * _HEADINGS[tag] + " " + _text(element)
        elif tag == "pre":
            yield "```\n" + (element.text_content() or "").strip("\n") + "\n```"
        elif tag == "table" and next(element.iterdescendants(*_LAYOUT), None) is None:
            yield from _table(element)
        elif tag in _PARAGRAPHS:
            yield _text(element)
        elif tag != "header" or in_part:
            if element.text and element.text.strip():
                yield _SPACES.sub(" ", element.text).strip()
            in_part = in_part or tag in _KEEP_HEADER_IN
            for child in reversed(element):
                if child.tail and child.tail.strip():
                    pending.append(_SPACES.sub(" ", child.tail).strip())
                pending.append((child, in_part))


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
