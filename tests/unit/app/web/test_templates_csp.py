"""The pages keep to the Content-Security-Policy: no inline script, event handler or javascript: URL anywhere."""

from __future__ import annotations

import re

from app.web.views.templating import TEMPLATES_DIR

INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:|hx-on|hx-vals=[\"']js:", re.IGNORECASE)


def test_no_template_has_inline_script() -> None:
    offenders = {
        str(path.relative_to(TEMPLATES_DIR)): INLINE.findall(path.read_text())
        for path in TEMPLATES_DIR.rglob("*.html")
        if INLINE.search(path.read_text())
    }
    assert offenders == {}


def test_every_post_form_carries_the_csrf_field_first() -> None:
    for path in TEMPLATES_DIR.rglob("*.html"):
        for form in re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', path.read_text(), re.S):
            fields = re.findall(r"<input|<select|<textarea|\{\{ csrf_field\(request\) \}\}", form)
            assert fields and fields[0] == "{{ csrf_field(request) }}", path.name
