"""Listing descriptions: Markdown in, safe HTML out.

markdown-it-py renders CommonMark (plus tables and strikethrough) with raw HTML disabled, so any
HTML a publisher types is shown as text; nh3 (ammonia) then allows only a fixed set of tags and
attributes, only http(s) and mailto links (no ``javascript:``), no images (a description cannot
pull third-party pixels into the storefront: an image becomes a link to it), and marks every
link ``rel="nofollow noopener noreferrer"``. Two independent layers: a bug in one does not let script through.
"""

from __future__ import annotations

import functools

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h2", "h3", "h4", "strong", "em", "del", "s", "code", "pre", "blockquote",
        "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    }
)  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "nofollow noopener noreferrer"


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    # An image would load from anywhere (a tracking pixel in the storefront): it becomes a link.
    md.add_render_rule("image", _image_as_link)
    # Headings start at h2: the page's h1 is the listing's name.
    md.add_render_rule("heading_open", _heading_open)
    md.add_render_rule("heading_close", _heading_close)
    return md


def _level(tag: str) -> str:
    return f"h{min(max(int(tag[1]) + 1, 2), 4)}"


def _heading_open(self, tokens, idx, options, env):
    return f"<{_level(tokens[idx].tag)}>"


def _heading_close(self, tokens, idx, options, env):
    return f"</{_level(tokens[idx].tag)}>\n"


def _image_as_link(self, tokens, idx, options, env):
    token = tokens[idx]
    src = escapeHtml(token.attrGet("src") or "")
    alt = escapeHtml(self.renderInlineAsText(token.children or [], options, env) or "image")
    return f'<a href="{src}">{alt}</a>'


def sanitize_html(html: str) -> str:
    return nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags={"script", "style"},
        attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel=LINK_REL,
        strip_comments=True,
        url_relative="deny",
    )


def render_markdown(text: str) -> str:
    """Safe HTML for ``text`` (Markdown), to be marked safe in templates."""
    if not text:
        return ""
    return sanitize_html(_parser().render(text))
