"""Coarse topic labels for the 106 articles of the ``wiki-sample`` corpus.

This is minibert's own labelling (one person's judgment from each article's title and lead
paragraph, written for this kit), not data copied from anywhere. The classes:

===========  ==================================================================================
label        what goes there
===========  ==================================================================================
person       biographies of real people
place        countries, states, provinces, continents, oceans, rivers
science      natural and formal sciences, medicine, mathematics, technology, spaceflight,
             organisms, materials
society      politics, law, economics, armed forces, history of states and wars, social
             science, political and moral philosophy
culture      art, film, literature, music, mythology, religion, sport, languages and writing
other        disambiguation pages, lists, and short pages on general words ("Answer")
===========  ==================================================================================

Borderline calls, so a student can disagree with them knowingly: Achilles and Apollo are
``culture`` (mythology), not ``person``; the "... of Angola" articles are ``society`` (they are
about institutions, the country itself is ``place``); Alchemy is ``science`` (history of a
protoscience); Affirming the consequent is ``science`` (formal logic); Adobe is ``science``
(a building material); Aikido and the American Football Conference are ``culture`` (sport);
Ambiguity is ``other`` (it spans linguistics, philosophy and law).
"""

from __future__ import annotations

TOPIC_LABELS: tuple[str, ...] = ("person", "place", "science", "society", "culture", "other")

ARTICLE_TOPICS: dict[str, str] = {
    # person
    "Abraham Lincoln": "person",
    "Aristotle": "person",
    "Ayn Rand": "person",
    "Alain Connes": "person",
    "Allan Dwan": "person",
    "Andre Agassi": "person",
    "Aldous Huxley": "person",
    "Andrei Tarkovsky": "person",
    "Arthur Schopenhauer": "person",
    "Albert Sidney Johnston": "person",
    "Albert Einstein": "person",
    # place
    "Alabama": "place",
    "Algeria": "place",
    "Andorra": "place",
    "Alaska": "place",
    "Asia": "place",
    "Aruba": "place",
    "Atlantic Ocean": "place",
    "Angola": "place",
    "Alberta": "place",
    "Afghanistan": "place",
    "Albania": "place",
    "Azerbaijan": "place",
    "Aa River": "place",
    # science
    "Autism": "science",
    "Albedo": "science",
    "International Atomic Time": "science",
    "Agricultural science": "science",
    "Alchemy": "science",
    "Astronomer": "science",
    "ASCII": "science",
    "Arithmetic mean": "science",
    "Amphibian": "science",
    "Agriculture": "science",
    "Algae": "science",
    "Analysis of variance": "science",
    "Alkane": "science",
    "Assistive technology": "science",
    "Abacus": "science",
    "Acid": "science",
    "Asphalt": "science",
    "Apollo 11": "science",
    "Apollo 8": "science",
    "Astronaut": "science",
    "Alkali metal": "science",
    "Atomic number": "science",
    "Anatomy": "science",
    "Affirming the consequent": "science",
    "Aardvark": "science",
    "Aardwolf": "science",
    "Adobe": "science",
    "Android (robot)": "science",
    "Actinopterygii": "science",
    "Amateur astronomy": "science",
    "Agnostida": "science",
    "Ampere": "science",
    "Algorithm": "science",
    "Algorithms (journal)": "science",
    # society
    "Anarchism": "society",
    "Altruism": "society",
    "Anthropology": "society",
    "Appellate procedure in the United States": "society",
    "Appellate court": "society",
    "Arraignment": "society",
    "American National Standards Institute": "society",
    "Articles of Confederation": "society",
    "American Revolutionary War": "society",
    "Abortion": "society",
    "Abstract (law)": "society",
    "Demographics of Angola": "society",
    "Politics of Angola": "society",
    "Economy of Angola": "society",
    "Transport in Angola": "society",
    "Angolan Armed Forces": "society",
    "Foreign relations of Angola": "society",
    # culture
    "An American in Paris": "culture",
    "Academy Award for Best Production Design": "culture",
    "Academy Awards": "culture",
    "Actrius": "culture",
    "Animalia (book)": "culture",
    "List of Atlas Shrugged characters": "culture",
    "Animation": "culture",
    "Apollo": "culture",
    "Achilles": "culture",
    "Animal Farm": "culture",
    "America the Beautiful": "culture",
    "A Modest Proposal": "culture",
    "Art": "culture",
    "Aikido": "culture",
    "Allah": "culture",
    "American Football Conference": "culture",
    "Alphabet": "culture",
    "A": "culture",
    "Austroasiatic languages": "culture",
    "Afroasiatic languages": "culture",
    # other
    "Austin (disambiguation)": "other",
    "Aberdeen (disambiguation)": "other",
    "Argument (disambiguation)": "other",
    "Animal (disambiguation)": "other",
    "Asia Minor (disambiguation)": "other",
    "Alien": "other",
    "Ada": "other",
    "Answer": "other",
    "Adventure": "other",
    "Ambiguity": "other",
    "List of anthropologists": "other",
}
