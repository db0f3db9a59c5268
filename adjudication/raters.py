"""How raters are named wherever their work is shown side by side: by letter, never by name."""


def rater_letter(position: int) -> str:
    """A, B, ..., Z, AA, AB, ...: the rater's place (0-based) in rating order."""
    letters = ""
    position += 1
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters
