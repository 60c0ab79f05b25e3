"""HTML to text on hostile and unusual pages: nesting, layout tables, forms, headers."""

from docent.ingestion.html import html_to_markdown


def test_nested_tables_give_each_text_once() -> None:
    depth = 400
    page = "<table><tr><td>cell " * depth + "payload" + "</td></tr></table>" * depth
    _, text = html_to_markdown(page)
    assert text.count("payload") == 1
    assert text.count("cell") == depth
    assert len(text) < 4 * len(page)  # it was 54 million characters from these 15 kB


def test_a_layout_table_keeps_its_headings_and_a_data_table_its_columns() -> None:
    page = (
        "<table><tr><td><h2>Setup</h2><p>Install it.</p>"
        "<table><tr><th>Setting</th><th>Default</th></tr><tr><td>work_mem</td><td>4MB</td></tr></table>"
        "</td></tr></table>"
    )
    _, text = html_to_markdown(page)
    assert text.split("\n\n") == ["## Setup", "Install it.", "Setting: work_mem | Default: 4MB"]


def test_a_page_nested_deeper_than_pythons_recursion_limit_is_read() -> None:
    depth = 1500  # past Python's recursion limit (libxml2 itself keeps 2048 levels at most)
    _, text = html_to_markdown("<div>" * depth + "<p>deep text</p>" + "</div>" * depth)
    assert text == "deep text"


def test_a_page_in_a_form_keeps_its_text_but_not_its_controls() -> None:
    page = (
        "<html><body><form id='form1'><h1>Install guide</h1><p>Run the installer.</p>"
        "<select><option>English</option><option>Deutsch</option></select><button>Go</button></form></body></html>"
    )
    _, text = html_to_markdown(page)
    assert text == "# Install guide\n\nRun the installer."


def test_a_page_header_goes_but_an_articles_header_stays() -> None:
    page = (
        "<body><header>Site name · Log in</header>"
        "<article><header><h1>Release notes 4.2</h1></header><p>Version 4.2 removes the legacy API.</p></article>"
        "</body>"
    )
    _, text = html_to_markdown(page)
    assert text == "# Release notes 4.2\n\nVersion 4.2 removes the legacy API."
