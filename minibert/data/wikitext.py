"""Wikitext -> structured plain text, with a count of every kind of markup that was removed.

BERT was pre-trained on "text passages" of English Wikipedia, with "lists, tables, and headers"
ignored (Devlin et al. 2019, Sec. 3.1, "Pre-training data"). This module is that step, done
deliberately and visibly for a lesson:

* ``mwparserfromhell`` (a real wikitext parser) turns the page into a node tree;
* a small renderer walks the tree and keeps only what a reader of the article sees as prose;
* every node it drops (or rewrites) is counted in ``WikiArticle.removed`` (occurrences) and
  ``WikiArticle.removed_chars`` (characters of wikitext), so a notebook can show a before/after
  table instead of asking students to trust a black box.

Why not ``Wikicode.strip_code()``? It keeps the contents of ``<ref>`` tags (citation titles,
publishers, page numbers end up inside sentences), drops inline templates whose text a reader
does see (``{{convert|3|km}}``, ``{{lang|fr|...}}``), keeps boilerplate sections (References,
External links) and flattens headings and list items into the running text. Here:

================  ==========================================================================
markup            what happens
================  ==========================================================================
``<ref>``         dropped with its contents (``refs``); citation templates such as ``{{sfn}}``,
                  ``{{rp}}`` and ``{{citation needed}}`` too (``citation_templates``)
templates         a few inline templates whose text is part of the sentence are rendered
                  (``convert``, ``lang``, ``nowrap``, ``chem``, ...; ``templates_rendered``);
                  all others (infoboxes, navboxes, hatnotes, maintenance tags) are dropped
                  (``templates``)
tables            ``{| ... |}`` dropped (``tables``)
files/images      ``[[File:...]]``/``[[Image:...]]`` dropped with captions (``files``)
categories        ``[[Category:...]]`` dropped (``categories``); interlanguage links too
                  (``interwiki``)
wikilinks         replaced by their visible text; the span is kept as a link
                  (``Paragraph.links``) and counted (``wikilinks``)
HTML tags         formatting tags keep their text (``html_tags``); ``<math>``, ``<gallery>``,
                  ``<code>``, ``<source>`` ... are dropped with their contents (``math``,
                  ``galleries``, ``code``)
entities          ``&nbsp;`` -> space, ``&amp;`` -> ``&`` ... (``html_entities``)
bold/italic       ``'''``/``''`` removed, text kept (``formatting``)
lists             bullets removed; each item becomes its own paragraph of kind ``"list"``
                  (``list_markers``), so a quality filter can drop list fragments
headings          never part of the text: they become ``Paragraph.heading`` and
                  ``WikiArticle.headings`` (``headings``)
boilerplate       whole sections such as References, External links and See also are dropped
sections          (``boilerplate_sections``)
comments, magic   ``<!-- -->`` and ``__NOTOC__`` dropped (``comments``, ``magic_words``)
external links    ``[http://x title]`` -> ``title``; bare and numbered URLs dropped (``urls``)
================  ==========================================================================

Counts are of top-level removals: a ``<ref>`` inside a dropped table counts as part of the table.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

try:  # a hard dependency, but say what to install rather than fail with a bare ImportError
    import mwparserfromhell
    from mwparserfromhell.nodes import (
        Argument,
        Comment,
        ExternalLink,
        Heading,
        HTMLEntity,
        Tag,
        Template,
        Text,
        Wikilink,
    )
except ImportError as err:  # pragma: no cover - exercised only in a broken environment
    raise ModuleNotFoundError(
        "minibert.data.wikitext needs the wikitext parser 'mwparserfromhell': "
        "pip install 'mwparserfromhell>=0.6.5' (it is a dependency of minibert)"
    ) from err

__all__ = [
    "DEFAULT_SKIPPED_SECTIONS",
    "Paragraph",
    "WikiArticle",
    "parse_wikitext",
]

# Sections that hold citations, link farms and navigation rather than prose.
DEFAULT_SKIPPED_SECTIONS: frozenset[str] = frozenset(
    {
        "references",
        "notes",
        "footnotes",
        "citations",
        "sources",
        "bibliography",
        "selected bibliography",
        "further reading",
        "external links",
        "see also",
        "notes and references",
        "references and notes",
        "explanatory notes",
        "general references",
        "works cited",
        "gallery",
    }
)

# MediaWiki namespaces (the export's <siteinfo>) and their aliases, lower case.
_NAMESPACES = frozenset(
    {
        "media", "special", "talk", "user", "user talk", "wikipedia", "wikipedia talk", "wp",
        "project", "file", "file talk", "image", "mediawiki", "mediawiki talk", "template",
        "template talk", "help", "help talk", "category", "category talk", "portal",
        "portal talk", "book", "book talk", "draft", "draft talk", "education program",
        "timedtext", "module", "module talk", "gadget", "gadget definition", "topic",
    }
)  # fmt: skip
# Sister projects: the link text is visible prose, but the target is not a Wikipedia article.
_INTERWIKI_PROJECTS = frozenset(
    {
        "w", "wikt", "wiktionary", "s", "wikisource", "q", "wikiquote", "b", "wikibooks",
        "n", "wikinews", "v", "wikiversity", "voy", "wikivoyage", "c", "commons", "m", "meta",
        "species", "wikispecies", "d", "wikidata", "mw", "hdl", "doi", "iarchive",
    }
)  # fmt: skip
# Interlanguage links ([[fr:Anarchisme]]) are written with a lower-case language code.
_LANGUAGE_PREFIX = re.compile(r"^[a-z]{2,3}(?:-[a-z]+)*$")

# Tags dropped with their contents: not prose (or, for <ref>, prose that is not the article's).
_DROPPED_TAGS = {
    "ref": "refs",
    "references": "refs",
    "math": "math",
    "chem": "math",
    "ce": "math",
    "score": "math",
    "gallery": "galleries",
    "imagemap": "galleries",
    "timeline": "galleries",
    "graph": "galleries",
    "mapframe": "galleries",
    "code": "code",
    "source": "code",
    "syntaxhighlight": "code",
    "pre": "code",
    "includeonly": "templates",
    "templatedata": "templates",
}
_TABLE_TAGS = frozenset({"table", "tr", "td", "th", "caption"})
# Block-level tags whose contents are a paragraph of their own.
_BLOCK_TAGS = frozenset({"blockquote", "poem", "div", "center", "p", "ul", "ol", "dl", "hr"})
_LIST_MARKUP = frozenset({"li", "dt", "dd"})

# Citation templates: the inline cousins of <ref>.
_CITATION_TEMPLATES = frozenset(
    {
        "sfn", "sfnp", "sfnm", "harvnb", "harv", "harvp", "harvtxt", "rp", "r", "efn", "refn",
        "citation needed", "cn", "fact", "clarify", "when", "who", "which", "by whom",
        "dubious", "according to whom", "page needed", "verify credibility", "better source",
        "full citation needed", "failed verification", "citation", "cite book", "cite web",
        "cite journal", "cite news", "cite encyclopedia", "cite magazine", "cite report",
        "cite conference", "cite thesis", "cite av media", "dead link",
    }
)  # fmt: skip
_MAGIC_WORDS = re.compile(r"__[A-Z]+__")
# Markup the parser could not pair up stays in Text nodes; it must not reach the corpus.
_RESIDUAL_MARKUP = re.compile(r"\[\[|\]\]|\{\{|\}\}|\{\||\|\}")
_STYLE_QUOTES = re.compile(r"'{5}|'{3}|'{2}")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2009\u202f]+")
_NEWLINES = re.compile(r"(\n(?:[ \t]*\n)*)")
_EMPTY_BRACKETS = re.compile(r" ?\((?:[\s;,]|&nbsp;)*\)")
_LEADING_SEPARATORS = re.compile(r"\((?:\s*[;,])+\s*(?=[^\s;,)])")
_LINK_TRAIL = re.compile(r"^[a-z]+")  # MediaWiki's English link trail: [[bus]]es -> "buses"
_PARENTHETICAL = re.compile(r"\s*\([^)]*\)\s*$")
_NUMBER = re.compile(r"^[-+\u2212]?[\d.,]+$")


@dataclass(frozen=True)
class Paragraph:
    """One block of prose.

    ``links`` holds ``(start, end, target)`` character spans into ``text`` for each wikilink to
    an article whose visible text survived cleaning; ``kind`` is ``"text"`` for ordinary
    paragraphs and ``"list"`` for a list item or definition line.
    """

    text: str
    heading: str | None = None
    links: tuple[tuple[int, int, str], ...] = ()
    kind: str = "text"


@dataclass
class WikiArticle:
    """A parsed page: prose paragraphs, the section headings, and what cleaning removed."""

    paragraphs: list[Paragraph]
    headings: list[tuple[int, str]]  # (level, title) for each kept section, in page order
    removed: Counter = field(default_factory=Counter)  # kind -> number of occurrences
    removed_chars: Counter = field(default_factory=Counter)  # kind -> wikitext characters
    source_chars: int = 0

    @property
    def text(self) -> str:
        """The plain text: paragraphs joined by a blank line, headings not included."""
        return "\n\n".join(p.text for p in self.paragraphs)


def parse_wikitext(
    wikitext: str, *, skip_sections: Iterable[str] = DEFAULT_SKIPPED_SECTIONS
) -> WikiArticle:
    """Parse one page of wikitext into paragraphs of plain prose.

    ``skip_sections``: section titles (compared case-insensitively) dropped with all their
    subsections; pass ``()`` to keep every section.
    """
    if not isinstance(wikitext, str):
        raise TypeError(
            f"parse_wikitext expects the page's wikitext as str, got {type(wikitext).__name__}"
        )
    renderer = _Renderer(frozenset(s.strip().lower() for s in skip_sections))
    renderer.render(mwparserfromhell.parse(wikitext, skip_style_tags=True))
    renderer.end_paragraph()
    return WikiArticle(
        paragraphs=renderer.paragraphs,
        headings=renderer.headings,
        removed=renderer.removed,
        removed_chars=renderer.removed_chars,
        source_chars=len(wikitext),
    )


class _Renderer:
    """Walks a Wikicode tree and writes paragraphs, tracking link spans and removals.

    Whitespace is collapsed as text is appended (runs of spaces become one, a single newline is
    a space, a blank line ends a paragraph), so link offsets recorded while writing stay valid
    in the final paragraph text.
    """

    def __init__(self, skip_sections: frozenset[str]):
        self.skip_sections = skip_sections
        self.paragraphs: list[Paragraph] = []
        self.headings: list[tuple[int, str]] = []
        self.removed: Counter = Counter()
        self.removed_chars: Counter = Counter()
        self._heading: str | None = None
        self._skip_level: int | None = None  # inside a skipped section of this level
        self._parts: list[str] = []
        self._length = 0
        self._links: list[list] = []  # [start, end, target]
        self._kind = "text"
        self._trail_link: list | None = None

    # -- bookkeeping --------------------------------------------------------------------------

    def drop(self, kind: str, node) -> None:
        self.removed[kind] += 1
        self.removed_chars[kind] += len(str(node))

    def note(self, kind: str, node) -> None:
        """Count markup that was rewritten (its text kept) rather than dropped."""
        self.removed[kind] += 1
        self.removed_chars[kind] += len(str(node))

    # -- writing ------------------------------------------------------------------------------

    def end_paragraph(self) -> None:
        self._trail_link = None
        text = "".join(self._parts)
        stripped = text.rstrip()
        links_in = self._links
        if "(" in stripped:
            stripped, links_in = self._drop_empty_brackets(stripped, links_in)
        if stripped:
            links = []
            for start, end, target in links_in:
                end = min(end, len(stripped))
                while start < end and stripped[start] == " ":
                    start += 1
                while end > start and stripped[end - 1] == " ":
                    end -= 1
                if start < end:
                    links.append((start, end, target))
            self.paragraphs.append(Paragraph(stripped, self._heading, tuple(links), self._kind))
        self._parts, self._length, self._links, self._kind = [], 0, [], "text"

    def _drop_empty_brackets(self, text: str, links: list) -> tuple[str, list]:
        """Delete what removals leave behind: "Alabama ( ; ) is" -> "Alabama is".

        Pronunciation templates and refs often sit alone in parentheses; once they are gone
        the brackets (and the separators between them) are noise. Link spans are shifted by
        the number of characters deleted before each offset.
        """
        cuts = [m.span() for m in _EMPTY_BRACKETS.finditer(text)]
        cuts += [(m.start() + 1, m.end()) for m in _LEADING_SEPARATORS.finditer(text)]
        if not cuts:
            return text, links
        cuts.sort()
        self.removed["empty_brackets"] += len(cuts)
        self.removed_chars["empty_brackets"] += sum(b - a for a, b in cuts)
        kept, last = [], 0
        for a, b in cuts:
            kept.append(text[last:a])
            last = max(last, b)
        kept.append(text[last:])

        def shift(pos: int) -> int:
            return pos - sum(min(b, pos) - a for a, b in cuts if a < pos)

        new_text = "".join(kept).rstrip()
        return new_text, [[shift(a), shift(b), t] for a, b, t in links]

    def write(self, text: str) -> None:
        """Append text that may contain newlines (blank line = paragraph break)."""
        if "\n" not in text:
            self._write_inline(text)
            return
        for piece in _NEWLINES.split(text):
            if not piece:
                continue
            if piece[0] == "\n":
                if piece.count("\n") >= 2 or self._kind == "list":
                    self.end_paragraph()  # a blank line, or the end of a list item's line
                else:
                    self._write_inline(" ")
            else:
                self._write_inline(piece)

    def _write_inline(self, text: str) -> None:
        text = _SPACES.sub(" ", text)
        if not self._parts or self._parts[-1].endswith(" "):
            text = text.lstrip(" ")
        if not text:
            return
        trail, self._trail_link = self._trail_link, None
        if trail is not None:
            match = _LINK_TRAIL.match(text)
            if match:
                trail[1] += match.end()
        self._parts.append(text)
        self._length += len(text)

    def render(self, code) -> None:
        for node in code.nodes:
            if self._skip_level is not None and not isinstance(node, Heading):
                continue
            self._render_node(node)

    def plain(self, code) -> str:
        """Render a fragment (a heading title, a template argument) to a one-line string."""
        return self.fragment(code)[0]

    def fragment(self, code) -> tuple[str, list]:
        """Render a fragment to one line of text and the link spans inside it."""
        sub = _Renderer(self.skip_sections)
        sub.render(code)
        sub.end_paragraph()
        self.removed.update(sub.removed)
        self.removed_chars.update(sub.removed_chars)
        text, links = "", []
        for paragraph in sub.paragraphs:
            offset = len(text) + (1 if text else 0)
            text = f"{text} {paragraph.text}" if text else paragraph.text
            links += [(s + offset, e + offset, t) for s, e, t in paragraph.links]
        return text, links

    def write_fragment(self, text: str, links: list) -> None:
        """Append a rendered fragment (already whitespace-clean), keeping its link spans."""
        if not text:
            return
        self._trail_link = None  # template output is not a link trail
        self._write_inline(text)
        landed = self._length - len(text)  # where the fragment's first character went
        self._links += [[s + landed, e + landed, t] for s, e, t in links]

    # -- nodes --------------------------------------------------------------------------------

    def _render_node(self, node) -> None:
        if isinstance(node, Text):
            self._text(node.value)
        elif isinstance(node, Wikilink):
            self._wikilink(node)
        elif isinstance(node, Tag):
            self._tag(node)
        elif isinstance(node, Template):
            self._template(node)
        elif isinstance(node, HTMLEntity):
            self.note("html_entities", node)
            self._write_inline(html.unescape(str(node)))
        elif isinstance(node, Heading):
            self._heading_node(node)
        elif isinstance(node, ExternalLink):
            self._external_link(node)
        elif isinstance(node, Comment):
            self.drop("comments", node)
        elif isinstance(node, Argument):  # {{{1}}}: template parameters, meaningless here
            self.drop("templates", node)
        else:  # pragma: no cover - mwparserfromhell has no other node types today
            self.drop("other", node)

    def _text(self, value: str) -> None:
        if "__" in value:
            value, n = _MAGIC_WORDS.subn("", value)
            self.removed["magic_words"] += n
        if "''" in value:  # bold/italic quotes stay text (parsed with skip_style_tags)
            before = len(value)
            value, n = _STYLE_QUOTES.subn("", value)
            self.removed["formatting"] += n
            self.removed_chars["formatting"] += before - len(value)
        if "[[" in value or "]]" in value or "{" in value or "}" in value:
            before = len(value)
            value, n = _RESIDUAL_MARKUP.subn("", value)
            if n:
                self.removed["residual_markup"] += n
            self.removed_chars["residual_markup"] += before - len(value)
        self.write(value)

    def _heading_node(self, node: Heading) -> None:
        self.end_paragraph()
        level = node.level
        if self._skip_level is not None and level > self._skip_level:
            return  # a subsection of a skipped section
        self._skip_level = None
        title = self.plain(node.title).strip()
        if title.lower() in self.skip_sections:
            self._skip_level = level
            self.drop("boilerplate_sections", node)
            return
        self.note("headings", node)
        self.headings.append((level, title))
        self._heading = title or None

    def _wikilink(self, node: Wikilink) -> None:
        raw_title = str(node.title).strip()
        leading_colon = raw_title.startswith(":")
        title = raw_title.lstrip(":").strip()
        prefix, sep, _ = title.partition(":")
        namespace = prefix.strip().lower() if sep else ""
        if namespace and not leading_colon:
            if namespace in ("file", "image", "media"):
                self.drop("files", node)
                return
            if namespace == "category":
                self.drop("categories", node)
                return
            if _LANGUAGE_PREFIX.match(prefix.strip()) and namespace not in _INTERWIKI_PROJECTS:
                self.drop("interwiki", node)
                return
        is_article = not namespace or (
            namespace not in _NAMESPACES and namespace not in _INTERWIKI_PROJECTS
        )
        if node.text is None:
            visible = None
        elif str(node.text).strip():
            visible = node.text
        else:  # the "pipe trick": [[Paris (band)|]] shows "Paris"
            visible = _PARENTHETICAL.sub("", title.split(":", 1)[-1] if namespace else title)
        self.note("wikilinks", node)
        start, paragraph_count = self._length, len(self.paragraphs)
        if visible is None:
            self.render(mwparserfromhell.parse(title, skip_style_tags=True))
        elif isinstance(visible, str):
            self._write_inline(visible)
        else:
            self.render(visible)
        target = _normalize_target(title) if is_article else ""
        # A link whose text spans a paragraph break (broken markup) is not kept as a span.
        if target and self._length > start and len(self.paragraphs) == paragraph_count:
            link = [start, self._length, target]
            self._links.append(link)
            self._trail_link = link

    def _external_link(self, node: ExternalLink) -> None:
        if node.brackets and node.title is not None and str(node.title).strip():
            self.note("external_links", node)
            self.render(node.title)
        else:
            self.drop("urls", node)

    def _tag(self, node: Tag) -> None:
        name = str(node.tag).strip().lower()
        markup = node.wiki_markup
        if name in _LIST_MARKUP:
            # "* item", "# item", "; term", ": indent" (or <li>): each is its own paragraph.
            self.note("list_markers", node)
            self.end_paragraph()
            self._kind = "list"
            if not markup and node.contents is not None:  # HTML <li>...</li>
                self.render(node.contents)
                self.end_paragraph()
            return
        if name in _TABLE_TAGS:
            self.drop("tables", node)
            return
        kind = _DROPPED_TAGS.get(name)
        if kind is not None:
            self.drop(kind, node)
            return
        if markup in ("''", "'''"):
            self.note("formatting", node)
        else:
            self.note("html_tags", node)
        if name == "br":
            self._write_inline(" ")
            return
        if name == "hr" or name in _BLOCK_TAGS:
            self.end_paragraph()
            if node.contents is not None:
                self.render(node.contents)
            self.end_paragraph()
            return
        if node.self_closing or node.contents is None:
            return
        if name == "sup":
            inner = self.plain(node.contents)
            if _NUMBER.match(inner):  # 10<sup>6</sup> must not read as "106"
                self._write_inline("^" + inner)
                return
        self.render(node.contents)

    def _template(self, node: Template) -> None:
        name = str(node.name).strip().lower().replace("_", " ")
        if name in _CITATION_TEMPLATES:
            self.drop("citation_templates", node)
            return
        rendered = _render_inline_template(name, node, self)
        if rendered is None:
            self.drop("templates", node)
            return
        self.note("templates_rendered", node)
        if isinstance(rendered, tuple):
            self.write_fragment(*rendered)
        else:
            self._write_inline(rendered)


def _normalize_target(title: str) -> str:
    """A wikilink target as a page title: no anchor, spaces not underscores, first letter upper."""
    title = html.unescape(title.split("#", 1)[0]).replace("_", " ").replace("\u00a0", " ")
    title = " ".join(title.split())
    return title[:1].upper() + title[1:]


def _positional(node: Template, renderer: _Renderer) -> list[str]:
    return [renderer.plain(p.value).strip() for p in node.params if not p.showkey]


def _named(node: Template, key: str, renderer: _Renderer) -> str | None:
    for param in node.params:
        if param.showkey and str(param.name).strip() == key:
            return renderer.plain(param.value).strip()
    return None


def _render_inline_template(
    name: str, node: Template, renderer: _Renderer
) -> str | tuple[str, list] | None:
    """Text a reader sees for the few inline templates that carry part of a sentence.

    Templates that wrap prose (``nowrap``, ``lang``) return ``(text, link spans)`` so links inside
    them survive. Returns None for every other template (infoboxes, navboxes, hatnotes, maintenance tags),
    which the caller drops. Only the visible words are produced, not MediaWiki's exact HTML.
    """
    if name in ("convert", "cvt"):
        # {{convert|3|km|mi}} -> "3 km"; {{convert|10|to|20|km}} -> "10 to 20 km".
        args = _positional(node, renderer)
        if not args:
            return None
        words = [args[0]]
        rest = args[1:]
        while len(rest) >= 2 and rest[0] in ("to", "-", "and", "or", "by", "x", "+/-", "–"):
            words += ["–" if rest[0] == "-" else rest[0], rest[1]]
            rest = rest[2:]
        if rest:
            words.append(rest[0])
        return " ".join(w for w in words if w)
    if name == "lang" or name.startswith("lang-") or name in ("transl", "transliteration"):
        values = [p.value for p in node.params if not p.showkey]
        return renderer.fragment(values[-1]) if values else None
    if name in ("nowrap", "nobr", "smaller", "small", "sc", "smallcaps", "vr", "nobold",
                "noitalic", "em", "strong", "mvar", "math", "var", "quote", "blockquote",
                "keypress", "nihongo", "nihongo2", "abbr", "abbrlink"):  # fmt: skip
        values = [p.value for p in node.params if not p.showkey]
        return renderer.fragment(values[0]) if values else None
    if name == "chem":
        return "".join(_positional(node, renderer)) or None
    if name in ("frac", "sfrac"):
        args = _positional(node, renderer)
        if len(args) == 3:
            return f"{args[0]} {args[1]}/{args[2]}"
        if len(args) == 2:
            return f"{args[0]}/{args[1]}"
        return f"1/{args[0]}" if args else None
    if name == "val":
        args = _positional(node, renderer)
        unit = _named(node, "u", renderer) or _named(node, "ul", renderer)
        return " ".join(x for x in (args[0] if args else None, unit) if x) or None
    if name in ("as of", "asof"):
        args = _positional(node, renderer)
        return ("As of " + " ".join(args[:3])) if args else None
    if name == "angbr":
        args = _positional(node, renderer)
        return f"⟨{args[0]}⟩" if args else None
    if name in ("'s", "'"):
        return "'s" if name == "'s" else "'"
    if name == "nbsp":
        return " "
    if name in ("ndash", "mdash", "snd", "spaced ndash"):
        return " – " if name != "mdash" else "—"
    if name in ("circa", "c."):
        args = _positional(node, renderer)
        return ("c. " + args[0]) if args else "c."
    if name in ("floruit", "fl."):
        args = _positional(node, renderer)
        return ("fl. " + args[0]) if args else None
    if name == "ipa" or name.startswith("ipa-") or name in ("ipac-en", "respell", "pronunciation"):
        return None  # pronunciation guides: noise for a language model of prose
    return None
