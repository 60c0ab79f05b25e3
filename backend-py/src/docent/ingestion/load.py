"""Turn uploaded bytes into text with Markdown headings where the source had structure."""

from dataclasses import dataclass
from pathlib import PurePosixPath

from docent.errors import BadInput, InvalidContent
from docent.ingestion.html import html_to_markdown
from docent.ingestion.pdf import read_pdf

TEXT, MARKDOWN, HTML, PDF = "text/plain", "text/markdown", "text/html", "application/pdf"
_BY_SUFFIX = {
    ".txt": TEXT, ".text": TEXT, ".md": MARKDOWN, ".markdown": MARKDOWN,
    ".html": HTML, ".htm": HTML, ".xhtml": HTML, ".pdf": PDF,
}  # fmt: skip
SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX)
_BY_DECLARED = {"text/plain": TEXT, "text/markdown": MARKDOWN, "text/x-markdown": MARKDOWN,
                "text/html": HTML, "application/xhtml+xml": HTML, "application/pdf": PDF}  # fmt: skip


class UnsupportedType(InvalidContent):
    status = 415
    default_code = "unsupported_type"


@dataclass(frozen=True, slots=True)
class LoadedText:
    title: str | None
    markdown: str


def detect_type(filename: str, declared: str | None) -> str:
    """The document type, from the file name's suffix, else the declared content type."""
    suffix = PurePosixPath(filename.lower()).suffix
    found = _BY_SUFFIX.get(suffix) or _BY_DECLARED.get((declared or "").split(";")[0].strip().lower())
    if found is None:
        raise UnsupportedType("unsupported file type: upload plain text, Markdown, HTML or PDF")
    return found


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidContent("the file is not UTF-8 text", code="not_utf8") from None


def load(data: bytes, content_type: str) -> LoadedText:
    if content_type == PDF:
        return _load_pdf(data)
    text = decode_text(data)
    if content_type == HTML:
        title, markdown = html_to_markdown(text)
        return LoadedText(title=title, markdown=markdown)
    if content_type == MARKDOWN:
        first = next((line for line in text.splitlines() if line.startswith("# ")), None)
        return LoadedText(title=first[2:].strip() if first else None, markdown=text)
    return LoadedText(title=None, markdown=text)


def _load_pdf(data: bytes) -> LoadedText:
    title, pages = read_pdf(data)
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        raise BadInput("the PDF has no extractable text (a scan needs OCR first)", code="no_text")
    return LoadedText(title=title.strip() or None if title else None, markdown=text)
