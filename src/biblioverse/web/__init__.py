"""Server-rendered pages: Jinja2 templates, htmx, a vendored CSS framework."""
