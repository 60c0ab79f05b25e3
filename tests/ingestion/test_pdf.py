"""PDFs read in a child process: a page listed many times is read once, and a PDF that
takes too long fails with a reason instead of stalling ingestion."""

import io
import zlib

import pytest

from docent.errors import BadInput
from docent.ingestion import pdf
from docent.ingestion.load import PDF, load

LINE = b"BT /F1 12 Tf 72 700 Td (hello world hello world) Tj ET\n"


def _pdf(content: bytes, *, kids: int) -> bytes:
    """A one-page PDF whose page tree lists that page `kids` times."""
    stream = zlib.compress(content, 9)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join([b"3 0 R"] * kids) + b"] /Count %d >>" % kids,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.writelines(b"%010d 00000 n \n" % offset for offset in offsets)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def test_a_page_listed_thousands_of_times_is_read_once() -> None:
    loaded = load(_pdf(LINE * 10, kids=5000), PDF)
    assert loaded.markdown.count("hello world") == 20


def test_a_pdf_that_reads_too_slowly_fails_with_a_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "PDF_SECONDS", 0.5)
    slow = _pdf(LINE * (5_000_000 // len(LINE)), kids=1)  # 5 MB of text operators: about 15 s to read
    assert len(slow) < 50_000
    with pytest.raises(BadInput, match=r"took longer than 0.5 s") as caught:
        load(slow, PDF)
    assert caught.value.code == "pdf_too_slow"
