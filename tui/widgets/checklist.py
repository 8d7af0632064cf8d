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


class CheckList(SelectionList[T]):
    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        # the toggle's glyph, read from the public Checkbox (SelectionList draws the same toggle)
        if len(segments) < 3 or segments[1].text != Checkbox.BUTTON_INNER:
            return strip
        try:
            selection = self.get_option_at_index(self.scroll_offset.y + y)
        except OptionDoesNotExist:
            return strip
        box = CHECKED if selection.value in self.selected else UNCHECKED
        style = segments[1].style  # the button's own style: colour still adds to the shape
        return Strip([*(Segment(char, style) for char in box), *segments[3:]], strip.cell_length)


class MarkedCheckbox(Checkbox):
    """A single Checkbox drawn like CheckList's rows: ``[x] label`` or ``[ ] label``."""

    def render_line(self, y: int) -> Strip:
        strip = super().render_line(y)
        segments = list(strip)
        button = [i for i, segment in enumerate(segments) if segment.text == self.BUTTON_INNER]
        if not button or button[0] < 1 or button[0] + 1 >= len(segments):
            return strip
        i = button[0]
        box = CHECKED if self.value else UNCHECKED
        style = segments[i].style
        return Strip([*segments[:i - 1], *(Segment(char, style) for char in box), *segments[i + 2:]],
                     strip.cell_length)
