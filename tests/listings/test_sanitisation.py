"""Hostile listing content: Markdown that tries to run script, and images that are not what they
claim (bombs, other formats, SVG, truncated files), plus what the image pipeline does to good ones."""

from __future__ import annotations

import io
import struct
import zlib
from html.parser import HTMLParser

import pytest
from PIL import Image

from apps.core.errors import ValidationFailed
from apps.listings.images import media_name, process_image, store_image
from apps.listings.markdown import ALLOWED_TAGS, render_markdown
from tests.listings.support import image_bytes


# --- Markdown -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "source",
    [
        "<script>alert(1)</script>",
        "Hello <img src=x onerror=alert(1)>",
        "<a href='javascript:alert(1)'>x</a>",
        "[click](javascript:alert(1))",
        "[click](JaVaScRiPt:alert(1))",
        "[click](  javascript:alert(1))",
        "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[click](vbscript:msgbox(1))",
        "![x](javascript:alert(1))",
        "<iframe src='https://evil.example'></iframe>",
        "<style>body{display:none}</style>",
        '<div onclick="alert(1)">x</div>',
        "<svg onload=alert(1)>",
        '[x](https://ok.example "title" onmouseover=alert(1))',
        "```html\n<script>alert(1)</script>\n```",
    ],
)
def test_markdown_never_lets_script_through(source):
    # what a browser would build from the HTML: only harmless elements, no event handlers, and
    # links only to http(s) or mailto (anything else stays as inert text)
    elements = _elements(render_markdown(source))
    for tag, attrs in elements:
        assert tag in ALLOWED_TAGS, (source, tag)
        for name, value in attrs:
            assert not name.startswith("on") and name in {"href", "title", "rel", "start", "align"}, (source, name)
            if name == "href":
                assert value.split(":", 1)[0].lower() in ("http", "https", "mailto"), (source, value)


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.found = []

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


def _elements(html: str) -> list:
    collector = _Collector()
    collector.feed(html)
    return collector.found


def test_links_are_kept_and_marked_nofollow():
    html = render_markdown("[docs](https://docs.example/x) and <https://auto.example>")
    assert '<a href="https://docs.example/x" rel="nofollow noopener noreferrer">docs</a>' in html
    assert 'href="https://auto.example"' in html and html.count('rel="nofollow noopener noreferrer"') == 2


def test_raw_html_is_shown_as_text():
    assert render_markdown("<b>bold</b>") == "<p>&lt;b&gt;bold&lt;/b&gt;</p>\n"


def test_images_become_links_and_headings_start_at_h2():
    html = render_markdown("# Title\n\n![diagram](https://cdn.example/d.png)")
    assert "<h2>Title</h2>" in html and "<h1" not in html
    assert '<a href="https://cdn.example/d.png" rel="nofollow noopener noreferrer">diagram</a>' in html


def test_tables_lists_and_code_survive():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n\n`code` ~~old~~")
    for tag in ("<table>", "<td>1</td>", "<ul>", "<li>one</li>", "<code>code</code>", "<s>old</s>"):
        assert tag in html


# --- images ---------------------------------------------------------------------------------------
def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_allowed_formats_are_reencoded_as_webp(fmt):
    result = process_image(image_bytes(800, 500, fmt=fmt), "screenshot")
    image = _decoded(result.data)
    assert image.format == "WEBP" and (result.width, result.height) == (800, 500) == image.size


def test_large_images_are_resized_to_fit_their_kind():
    shot = process_image(image_bytes(3200, 1000), "screenshot")
    assert (shot.width, shot.height) == (1600, 500)
    icon = process_image(image_bytes(1024, 1024), "icon")
    assert (icon.width, icon.height) == (256, 256)


def test_exif_is_stripped_and_orientation_applied():
    # given a JPEG carrying GPS-ish EXIF and "rotate 90°" orientation
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW
    exif[0x010F] = "SpyCam Inc."  # make
    exif[0x9286] = "secret comment"
    data = image_bytes(600, 400, fmt="JPEG", exif=exif.tobytes())
    # when it is processed
    result = process_image(data, "screenshot")
    image = _decoded(result.data)
    # then it is upright and carries no metadata
    assert image.size == (400, 600)
    assert not image.getexif() and "exif" not in image.info and "icc_profile" not in image.info
    assert b"SpyCam" not in result.data and b"secret" not in result.data


def test_transparency_is_kept():
    data = image_bytes(300, 300, mode="RGBA")
    assert _decoded(process_image(data, "icon").data).mode == "RGBA"


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "image_invalid"),
        (b"not an image at all", "image_format"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image_format"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', "image_format"),
        (b"<html><script>alert(1)</script></html>", "image_format"),
        (b"%PDF-1.4\n", "image_format"),
    ],
    ids=["empty", "text", "svg-script", "svg", "html", "pdf"],
)
def test_non_images_are_refused(data, code):
    with pytest.raises(ValidationFailed) as exc:
        process_image(data, "screenshot")
    assert exc.value.code == code and exc.value.param == "file"


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO"])
def test_other_image_formats_are_refused(fmt):
    with pytest.raises(ValidationFailed) as exc:
        process_image(image_bytes(400, 300, fmt=fmt), "screenshot")
    assert exc.value.code == "image_format"


def test_a_truncated_image_is_refused():
    data = image_bytes(800, 600, fmt="PNG")
    with pytest.raises(ValidationFailed) as exc:
        process_image(data[: len(data) // 2], "screenshot")
    assert exc.value.code == "image_invalid"


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims huge dimensions and holds a tiny compressed body (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (30_000, 1_000), (6_000, 5_000)])
def test_decompression_bombs_are_refused_before_decoding(width, height):
    with pytest.raises(ValidationFailed) as exc:
        process_image(_png_header_only(width, height), "screenshot")
    assert exc.value.code == "image_too_large"


def test_files_over_the_byte_limit_are_refused(settings):
    settings.PLAZA_LISTING_IMAGE_MAX_BYTES = 1000
    with pytest.raises(ValidationFailed) as exc:
        process_image(image_bytes(800, 600, fmt="PNG") + b"\x00" * 1000, "screenshot")
    assert exc.value.code == "image_too_large"


def test_images_below_the_minimum_size_are_refused():
    with pytest.raises(ValidationFailed) as exc:
        process_image(image_bytes(32, 32), "icon")
    assert exc.value.code == "image_too_small"


def test_images_are_stored_once_by_digest(settings, tmp_path):
    from django.core.files.storage import storages

    result = process_image(image_bytes(400, 300), "screenshot")
    store_image(result)
    store_image(result)
    storage = storages["listing_media"]
    assert storage.exists(media_name(result.sha256))
    directory = storage.path(media_name(result.sha256)).rsplit("/", 1)[0]
    import os

    assert os.listdir(directory) == [f"{result.sha256}.webp"]
