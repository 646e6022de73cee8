"""Deterministic categories from keywords, so expenses get one with the AI off (or down)."""

from __future__ import annotations

import re

CATEGORIES: tuple[str, ...] = ("food", "groceries", "transport", "housing", "utilities", "health", "shopping",
                               "entertainment", "travel", "education", "personal", "other")

_KEYWORDS = {
    "food": "food meal coffee latte cappuccino espresso tea lunch dinner breakfast brunch snack pizza burger "
            "sushi noodle ramen restaurant cafe café takeout bakery",
    "groceries": "grocery supermarket vegetable fruit milk bread egg",
    "transport": "taxi cab uber lyft bus train metro subway tram jeepney tricycle fuel petrol diesel parking "
                 "toll fare",
    "housing": "rent mortgage",
    "utilities": "utility electricity internet wifi",
    "health": "doctor pharmacy medicine medication dentist hospital clinic vitamin prescription",
    "shopping": "clothes shirt shoe dress jacket shopping",
    "entertainment": "movie cinema netflix spotify concert theater theatre",
    "travel": "hotel flight airbnb airfare hostel luggage",
    "education": "tuition school course textbook book",
    "personal": "haircut salon barber laundry cosmetics toiletry",
}
_PHRASES = {f"{kind} bill": "utilities" for kind in ("water", "phone", "electric", "power", "gas")}
# Words with a second common meaning ("grab a coffee", "gas bill") count only when nothing else does.
_WEAK = {"grab": "transport", "gas": "transport"}
_TABLE = {word: category for category, words in _KEYWORDS.items() for word in words.split()}
_WORD = re.compile(r"[^\W\d_]+")  # runs of letters: no nesting, nothing to backtrack


def categorize(description: str) -> str | None:
    """Pick the category of the first keyword in the description, or None."""
    words = [_forms(word) for word in _WORD.findall(description.casefold())]
    weak = None
    for forms, next_forms in zip(words, [*words[1:], ()]):
        for phrase in (f"{a} {b}" for a in forms for b in next_forms):
            if phrase in _PHRASES:
                return _PHRASES[phrase]
        for form in forms:
            if form in _TABLE:
                return _TABLE[form]
            weak = weak or _WEAK.get(form)
    return weak


def _forms(word: str) -> tuple[str, ...]:
    """The word and the singulars it might be a plural of: buses→bus, groceries→grocery, movies→movie."""
    forms = [word]
    if word.endswith("s") and len(word) > 3:
        forms.append(word[:-1])
        if word.endswith("es"):
            forms.append(word[:-2])
        if word.endswith("ies"):
            forms.append(word[:-3] + "y")
    return tuple(forms)
