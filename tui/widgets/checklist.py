"""A SelectionList and a Checkbox whose boxes read ``[x]`` and ``[ ]``: checked and unchecked differ in
shape, not only in colour (a monochrome terminal, a colour-blind user or a text capture shows which are
selected)."""

from __future__ import annotations

from typing import TypeVar

from rich.segment import Segment
from textual.strip import Strip
from textual.widgets import Checkbox, SelectionList
from textual.widgets.option_list import OptionDoesNotExist

T = TypeVar("T")

CHECKED, UNCHECKED = "[x]", "[ ]"


def boxed(strip: Strip, checked: bool) -> Strip:
    """``strip`` with its toggle (``▐X▌``: the public Checkbox's glyph, which SelectionList draws too)
    drawn as ``[x]`` or ``[ ]`` in the button's own style, so colour still adds to the shape."""
    segments = list(strip)
    button = next((i for i, segment in enumerate(segments) if segment.text == Checkbox.BUTTON_INNER), None)
    if button is None or button < 1 or button + 1 >= len(segments):
        return strip
    style = segments[button].style
    box = [Segment(char, style) for char in (CHECKED if checked else UNCHECKED)]
    return Strip([*segments[:button - 1], *box, *segments[button + 2:]], strip.cell_length)


class CheckList(SelectionList[T]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        return boxed(strip, selection.value in self.selected)


class MarkedCheckbox(Checkbox):
    """A single Checkbox drawn like CheckList's rows: ``[x] label`` or ``[ ] label``."""

    def render_line(self, y: int) -> Strip:
        return boxed(super().render_line(y), self.value)
