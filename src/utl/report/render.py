"""The report's two bodies, HTML and plain text, from Jinja2 templates.

The templates live in ``utl/report/templates`` and load through ``PackageLoader``, so they
ship inside the wheel. The HTML is for mail clients: inline styles and tables only, no
script, no stylesheet link, no image, since most clients drop or block those.
"""

from __future__ import annotations

import jinja2

from utl.report.data import ReportData
from utl.report.formatting import money, quantity

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("utl.report", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
    undefined=jinja2.StrictUndefined,  # a misspelt field fails the render, not the reader
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENVIRONMENT.filters["money"] = money
_ENVIRONMENT.filters["qty"] = quantity


def render_html(data: ReportData) -> str:
    return _ENVIRONMENT.get_template("report.html.j2").render(r=data)


def render_text(data: ReportData) -> str:
    return _ENVIRONMENT.get_template("report.txt.j2").render(r=data)
