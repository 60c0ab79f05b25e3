"""Load (txt, md, html, pdf) → clean → chunk → embed → store."""
