"""Structure-aware chunking: split at Markdown headings, then by size within a section."""

from dataclasses import dataclass

from langchain_text_splitters import MarkdownHeaderTextSplitter, RecursiveCharacterTextSplitter

_HEADERS = [("#", "h1"), ("##", "h2"), ("###", "h3"), ("####", "h4")]
# all-MiniLM-L6-v2 reads 256 word pieces: about 900 characters of technical English.
CHUNK_SIZE = 900
CHUNK_OVERLAP = 150


@dataclass(frozen=True, slots=True)
class ChunkDraft:
    ordinal: int
    title: str
    heading_path: tuple[str, ...]
    content: str

    def embedding_text(self) -> str:
        """The chunk as it is embedded: where it sits in its document, then its text."""
        return " > ".join((self.title, *self.heading_path)) + "\n\n" + self.content


def chunk_markdown(markdown: str, *, title: str) -> list[ChunkDraft]:
    sections = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True).split_text(markdown)
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP, separators=["\n\n", "\n", ". ", " ", ""]
    )
    drafts: list[ChunkDraft] = []
    for section in sections:
        path = tuple(heading for _, key in _HEADERS if (heading := section.metadata.get(key)) and heading != title)
        for piece in splitter.split_text(section.page_content):
            if piece.strip():
                drafts.append(ChunkDraft(len(drafts), title, path, piece.strip()))
    return drafts
