"""Wikitext -> structured plain text: every kind of markup handled, counted, and link spans exact."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minibert.data.corpora import gensim_test_data, iter_wiki_pages
from minibert.data.wikitext import Paragraph, WikiArticle, parse_wikitext

LEFTOVER_MARKUP = ["{{", "}}", "[[", "]]", "<ref", "</ref", "&nbsp;", "&amp;", "|-", "{|", "|}",
                   "File:", "Image:", "Category:", "thumb|", "''", "<!--", "__NOTOC__", "=="]  # fmt: skip


def link_texts(paragraph: Paragraph) -> list[tuple[str, str]]:
    return [(paragraph.text[s:e], target) for s, e, target in paragraph.links]


def test_refs_are_removed_with_their_contents_and_counted():
    article = parse_wikitext(
        'Paris is big.<ref name="a">{{cite book |title=Big Cities}} p. 4</ref> '
        'It is old.<ref name="a"/> Very old.<ref>Smith, '
        "History"
        ", 1990.</ref>"
    )
    assert article.text == "Paris is big. It is old. Very old."
    assert article.removed["refs"] == 3
    assert article.removed_chars["refs"] > len("Smith, History, 1990.")


def test_ref_survives_unbalanced_italics_inside_it():
    # Real case from the excerpt's "Anarchism": a ref whose '' is never closed. Parsing bold and
    # italics as tags makes mwparserfromhell give up on the <ref> and leave it as raw text.
    article = parse_wikitext(
        'globally."<ref>[[Simon Critchley#Infinitely Demanding|Infinitely Demanding]]'
        "'' by [[Simon Critchley]]. 2007.</ref>\n\nNext paragraph."
    )
    assert article.text == 'globally."\n\nNext paragraph.'
    assert article.removed["refs"] == 1


def test_templates_are_dropped_but_inline_ones_keep_their_words():
    article = parse_wikitext(
        "{{Infobox person\n| name = X\n| birth = 1900}}\n"
        "{{Use dmy dates|date=June 2013}}"
        "The river is {{convert|120|km|mi}} long and called {{lang|fr|la Seine}} in "
        "{{nowrap|[[France]]}}.{{citation needed|date=May 2010}}"
    )
    assert article.text == "The river is 120 km long and called la Seine in France."
    assert article.removed["templates"] == 2
    assert article.removed["templates_rendered"] == 3
    assert article.removed["citation_templates"] == 1
    assert link_texts(article.paragraphs[0]) == [("France", "France")]


def test_convert_ranges_and_chemistry():
    article = parse_wikitext("From {{convert|10|to|20|km}} deep, it holds {{chem|H|2|O}}.")
    assert article.text == "From 10 to 20 km deep, it holds H2O."


def test_tables_files_categories_and_interwiki_are_dropped():
    article = parse_wikitext(
        "[[File:Map.png|thumb|250px|A map of [[Europe]] in 1900.]]\n"
        "Europe is a continent.\n"
        '{| class="wikitable"\n|-\n! Country !! Capital\n|-\n| France || [[Paris]]\n|}\n'
        "[[Image:Flag.svg|left|A flag]]\n\n"
        "[[Category:Continents]]\n[[fr:Europe]]\n[[Category:Europe| ]]"
    )
    assert article.text == "Europe is a continent."
    assert article.removed["files"] == 2
    assert article.removed["tables"] == 1
    assert article.removed["categories"] == 2
    assert article.removed["interwiki"] == 1
    assert article.paragraphs[0].links == ()  # the caption's link left with the caption


def test_html_tags_entities_comments_and_formatting():
    article = parse_wikitext(
        "'''Salt''' is ''NaCl''<!-- hidden note -->, i.e. Na<sub>1</sub>Cl&nbsp;(mass&nbsp;58&nbsp;g) "
        '&amp; 10<sup>6</sup> grains.<br/>More <span class="x">text</span>. <math>x^2</math>'
    )
    assert article.text == "Salt is NaCl, i.e. Na1Cl (mass 58 g) & 10^6 grains. More text."
    assert article.removed["comments"] == 1
    assert article.removed["html_entities"] == 4
    assert article.removed["formatting"] == 4  # ''' ''' '' ''
    assert article.removed["math"] == 1
    assert article.removed["html_tags"] >= 4


def test_headings_are_structure_not_text_and_boilerplate_sections_go():
    wikitext = (
        "Lead paragraph.\n\n== History ==\nOld times.\n\n=== Early ===\nVery old times.\n\n"
        "== See also ==\n* [[Other thing]]\n\n== References ==\n{{reflist}}\n=== Notes ===\nA note.\n"
        "\n== Legacy ==\nStill here.\n"
    )
    article = parse_wikitext(wikitext)
    assert [p.text for p in article.paragraphs] == [
        "Lead paragraph.", "Old times.", "Very old times.", "Still here."
    ]  # fmt: skip
    assert [p.heading for p in article.paragraphs] == [None, "History", "Early", "Legacy"]
    assert article.headings == [(2, "History"), (3, "Early"), (2, "Legacy")]
    assert "History" not in article.text and "==" not in article.text
    assert article.removed["boilerplate_sections"] == 2
    kept_all = parse_wikitext(wikitext, skip_sections=())
    assert "A note." in kept_all.text and (2, "References") in kept_all.headings


def test_list_items_are_their_own_paragraphs_without_bullets():
    article = parse_wikitext(
        "Kinds of fruit:\n* [[Apple]]s, red\n* Pear\n# first\n#: continued\n; Term : Definition\nAfter."
    )
    assert [(p.text, p.kind) for p in article.paragraphs] == [
        ("Kinds of fruit:", "text"),
        ("Apples, red", "list"),
        ("Pear", "list"),
        ("first", "list"),
        ("continued", "list"),
        ("Term", "list"),
        ("Definition", "list"),
        ("After.", "text"),
    ]
    assert article.removed["list_markers"] == 7  # "#:" is two markers
    # the link trail "s" belongs to the link, as MediaWiki renders it
    assert link_texts(article.paragraphs[1]) == [("Apples", "Apple")]


def test_link_spans_point_at_the_visible_text():
    article = parse_wikitext(
        "The [[Paris (band)|]] played in [[paris]]'s old [[Paris_Opera#History|opera   house]], "
        "'''[[Europe]]''' and [[wikt:fromage|cheese]] [[:Category:Cities|city lists]] "
        "[[OS&nbsp;X]] [[#Below|below]]."
    )
    paragraph = article.paragraphs[0]
    assert paragraph.text == (
        "The Paris played in paris's old opera house, Europe and cheese city lists OS X below."
    )
    assert link_texts(paragraph) == [
        ("Paris", "Paris (band)"),
        ("paris", "Paris"),
        ("opera house", "Paris Opera"),
        ("Europe", "Europe"),
        ("OS X", "OS X"),
    ]  # sister-project, namespace and self-section links show text but are not article links


def test_brackets_emptied_by_removals_are_dropped_and_spans_shift():
    article = parse_wikitext(
        "'''Adobe''' ({{IPAc-en|ə|ˈ|d|oʊ|b|i}}; {{IPA-es|aˈdoβe}}) is a [[building material]]. "
        "'''Alabama''' ({{IPAc-en|a}}) is a [[U.S. state|state]]."
    )
    paragraph = article.paragraphs[0]
    assert paragraph.text == "Adobe is a building material. Alabama is a state."
    assert link_texts(paragraph) == [
        ("building material", "Building material"),
        ("state", "U.S. state"),
    ]
    assert article.removed["empty_brackets"] == 2


def test_external_links_and_magic_words():
    article = parse_wikitext(
        "__NOTOC__See [http://example.org the site] or http://example.org/bare [http://x.org]."
    )
    assert article.text == "See the site or ."
    assert article.removed["magic_words"] == 1
    assert article.removed["urls"] == 2
    assert article.removed["external_links"] == 1


def test_text_joins_paragraphs_with_a_blank_line():
    article = parse_wikitext("One\nline.\n\n\nTwo.\n \nThree.")
    assert article.text == "One line.\n\nTwo.\n\nThree."
    assert isinstance(article, WikiArticle) and article.source_chars == len(
        "One\nline.\n\n\nTwo.\n \nThree."
    )


def test_rejects_non_strings():
    with pytest.raises(TypeError, match="wikitext as str"):
        parse_wikitext(b"bytes")


def test_real_table_heavy_pages_leave_no_markup():
    # gensim ships a second export whose pages are chosen for their table markup.
    pages = list(iter_wiki_pages(gensim_test_data("enwiki-table-markup.xml.bz2")))
    assert len(pages) == 5
    for page in pages:
        article = parse_wikitext(page.wikitext)
        assert article.removed["tables"] >= 1, page.title
        assert len(article.text.split()) > 100, page.title
        for marker in LEFTOVER_MARKUP:
            assert marker not in article.text, (page.title, marker)


_FRAGMENTS = st.sampled_from(
    ["word", " ", "\n", "\n\n", "[[Link]]", "[[A|b c]]", "[[x]]s", "{{t|a}}", "{{convert|1|m}}",
     "<ref>r [[y]]</ref>", "''", "'''", "== H ==\n", "* ", "{|\n| c\n|}\n", "&nbsp;", "(", ")",
     "[[File:f.png|thumb|cap [[z]]]]", "<!-- c -->", "[http://u t]", ";", ",", "[[", "}}"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_FRAGMENTS, max_size=30).map("".join))
def test_any_mix_of_markup_gives_valid_paragraphs_and_spans(wikitext):
    article = parse_wikitext(wikitext)
    for paragraph in article.paragraphs:
        assert paragraph.text and paragraph.text == paragraph.text.strip()
        assert "\n" not in paragraph.text and "  " not in paragraph.text
        assert not re.search(r"\[\[|\]\]|\{\{|\}\}|<ref|&nbsp;", paragraph.text)
        for start, end, target in paragraph.links:
            assert 0 <= start < end <= len(paragraph.text) and target
            span = paragraph.text[start:end]
            assert span == span.strip()
