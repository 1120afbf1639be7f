"""English texts that keep their template and values, so that a page or a mail can show them in its reader's
language while the API, the CLI and the database keep the English. Pure.

`words("{who} applied {what}", who=..., what=...)` is the English string itself (a `str`); `translate`
renders it again from the template's translation. `make messages` extracts the templates (keywords
`words` and `plural_words:1,2`); a value that is itself `Words` is translated too. Without values the
template is the text as it is (braces and all).
"""

from collections.abc import Callable


class Words(str):
    template: str
    plural: str | None
    count: int | None
    values: dict

    def __new__(cls, template: str, plural: str | None, count: int | None, values: dict) -> "Words":
        chosen = template if plural is None or count == 1 else plural
        text = super().__new__(cls, chosen.format(**values) if values else chosen)
        text.template, text.plural, text.count, text.values = template, plural, count, values
        return text

    def __reduce__(self):
        return Words, (self.template, self.plural, self.count, self.values)


def words(template: str, /, **values) -> Words:
    """`template` with `values` in it (str.format): the English, translatable later."""
    return Words(template, None, None, values)


def plural_words(singular: str, plural: str, count: int, /, **values) -> Words:
    """The singular or the plural template as `count` asks, `count` among the values."""
    return Words(singular, plural, count, values | {"count": count})


def translate(text, gettext: Callable[[str], str], ngettext: Callable[[str, str, int], str]) -> str:
    """`text` in the language of `gettext`: `Words` from their translated template, any other value as it is."""
    if not isinstance(text, Words):
        return text
    values = {name: translate(value, gettext, ngettext) for name, value in text.values.items()}
    template = gettext(text.template) if text.plural is None else ngettext(text.template, text.plural, text.count)
    try:
        return template.format(**values) if values else template
    except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder: the English still reads
        return str(text)
