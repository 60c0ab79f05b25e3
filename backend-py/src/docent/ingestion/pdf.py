"""A PDF's text, read in a child process with a time and a memory limit.

A few kilobytes of PDF can hold streams that inflate to tens of megabytes, or list one page
thousands of times, and pypdf's text extraction on them runs for minutes to hours and
cannot be interrupted. In-process that would stall the ingestion worker, and with it every
user's uploads; in a child it is killed at `PDF_SECONDS` and its memory capped at
`PDF_MEMORY_BYTES`, and the document fails with a message that says why. A page listed
more than once is read once; past `MAX_TEXT_CHARS` of text, reading stops.

The child is `python -m docent.ingestion.pdf`: the PDF on stdin, JSON on stdout.
"""

import io
import json
import logging
import resource
import subprocess
import sys
from typing import Any

from docent.errors import BadInput

log = logging.getLogger(__name__)

PDF_SECONDS = 300.0
PDF_MEMORY_BYTES = 2 << 30
MAX_TEXT_CHARS = 20_000_000
_PROBLEMS = {
    "unreadable": ("the PDF could not be read (corrupt or encrypted)", "unreadable_pdf"),
    "too_long": (f"the PDF holds more than {MAX_TEXT_CHARS:,} characters of text", "pdf_too_long"),
}


def read_pdf(data: bytes) -> tuple[str | None, list[str]]:
    """The PDF's title (from its metadata) and each page's text; BadInput when it cannot be read."""
    try:
        done = subprocess.run(  # noqa: S603 (this interpreter, this module)
            [sys.executable, "-m", __name__], input=data, capture_output=True, timeout=PDF_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        raise BadInput(f"reading the PDF took longer than {PDF_SECONDS:g} s", code="pdf_too_slow") from None
    if done.returncode != 0:  # killed, or out of memory
        log.info("pdf_reader_died", extra={"returncode": done.returncode})
        raise BadInput("the PDF could not be read within the memory allowed", code="unreadable_pdf")
    result: dict[str, Any] = json.loads(done.stdout)
    if "problem" in result:
        log.info("pdf_unreadable", extra={"problem": result["problem"], "error": result.get("error")})
        detail, code = _PROBLEMS[result["problem"]]
        raise BadInput(detail, code=code)
    return result["title"], result["pages"]


def _extract(data: bytes) -> dict[str, Any]:
    from pypdf import PdfReader  # noqa: PLC0415 (only the child needs pypdf)
    from pypdf.errors import PyPdfError  # noqa: PLC0415

    try:
        reader = PdfReader(io.BytesIO(data))
        pages: list[str] = []
        seen: set[tuple[int, int]] = set()
        chars = 0
        for page in reader.pages:
            if (ref := page.indirect_reference) is not None:
                if (ref.idnum, ref.generation) in seen:
                    continue
                seen.add((ref.idnum, ref.generation))
            text = page.extract_text() or ""
            chars += len(text)
            if chars > MAX_TEXT_CHARS:
                return {"problem": "too_long"}
            pages.append(text)
        title = reader.metadata.title if reader.metadata else None
    except (PyPdfError, ValueError, KeyError, TypeError, OSError, RecursionError) as exc:
        return {"problem": "unreadable", "error": type(exc).__name__}
    return {"title": str(title) if title else None, "pages": pages}


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (PDF_MEMORY_BYTES, PDF_MEMORY_BYTES))
    result = _extract(sys.stdin.buffer.read())
    sys.stdout.write(json.dumps(result))  # ASCII: a lone surrogate pypdf produced still encodes


if __name__ == "__main__":
    main()
