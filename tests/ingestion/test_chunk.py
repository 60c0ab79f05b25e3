"""The heading splitter: LangChain's output, made in linear time; headings kept short."""

from langchain_text_splitters import MarkdownHeaderTextSplitter

from docent.ingestion.chunk import _HEADERS, HEADING_CHARS, _HeadingSplitter, chunk_markdown

MARKDOWN = """# Guide

Intro paragraph.
Second line of it.

## Install

Run the installer.

```
# not a heading inside code
```

### Details

~~~
## nor this
~~~

Last words.

# Appendix

#nospace is text
####
Tail.
"""


def test_sections_are_langchains_own() -> None:
    langchain = MarkdownHeaderTextSplitter(_HEADERS, strip_headers=True).split_text(MARKDOWN)
    ours = _HeadingSplitter().split_text(MARKDOWN)
    assert [(d.page_content, d.metadata) for d in ours] == [(d.page_content, d.metadata) for d in langchain]
    assert len(ours) == 5  # Guide, Install, Details, Appendix, and the empty level-4 heading


def test_a_long_section_without_headings_is_chunked_whole() -> None:
    paragraphs = [f"Paragraph {n} says something." for n in range(5000)]
    drafts = chunk_markdown("\n\n".join(paragraphs), title="Long")
    text = " ".join(draft.content for draft in drafts)
    assert all(paragraph in text for paragraph in (paragraphs[0], paragraphs[2500], paragraphs[-1]))
    assert all(len(draft.content) <= 900 for draft in drafts)


def test_a_long_heading_is_cut_where_every_chunk_repeats_it() -> None:
    drafts = chunk_markdown("## " + "long " * 20_000 + "\n\n" + "Body text. " * 500, title="t")
    assert len(drafts) > 1
    assert all(len(draft.heading_path[0]) <= HEADING_CHARS for draft in drafts)
