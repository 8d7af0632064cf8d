"""Command-palette providers (ctrl+p): every action of every screen by name, and the screens'
parameterised actions (sort by a column, open an analysis) that no single key can name."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from typing import Any, Protocol

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.content import Content

from tui.format import markup_literal
from tui.rows.leaderboard import COLUMNS


class Board(Protocol):
    """What the leaderboard offers the palette (kept as a protocol: the screen imports this module)."""

    analyses: list[Any]
    opened_id: str | None
    over_seeds: bool
    seed_group: Any  # engine.api.seedgroups.SeedGroup | None: the open analysis's, once looked for

    def sort_by(self, title: str) -> None: ...

    def open_by_id(self, analysis_id: str) -> None: ...

    def action_toggle_seeds(self) -> None: ...


class ScreenCommands(Provider):
    """Named commands of one screen: (title, help, callback) triples, matched as the user types."""

    def commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        raise NotImplementedError

    async def discover(self) -> Hits:
        for title, help_text, callback in self.commands():
            yield DiscoveryHit(Content(title), callback, help=markup_literal(help_text))

    async def search(self, query: str) -> Hits:
        # titles and help name analyses and studies (workspace folder names): shown as written, never
        # as markup; Matcher.highlight would parse the title, so the match is highlighted here
        matcher = self.matcher(query)
        for title, help_text, callback in self.commands():
            score, offsets = matcher.fuzzy_search.match(matcher.query, title)
            if score > 0:
                prompt = Content(title)
                for offset in offsets:
                    prompt = prompt.stylize(matcher.match_style, offset, offset + 1)
                yield Hit(score, prompt, callback, text=title, help=markup_literal(help_text))


class LeaderboardCommands(ScreenCommands):
    """Switch between the single analysis and its seed group, sort by any column (either way),
    open any analysis."""

    def commands(self) -> Iterator[tuple[str, str, Callable[[], Any]]]:
        board: Board = self.screen  # type: ignore[assignment]  # only the leaderboard lists this provider
        if board.over_seeds:
            yield "Show the single analysis", f"{board.opened_id} alone (key o)", board.action_toggle_seeds
        else:
            group = board.seed_group
            members = f"study {group.study}: {', '.join(group.members)}" if group is not None else \
                "analyses named <study>-s<seed>"
            yield "Show the aggregate over seeds", f"mean and 95% interval per method over {members} (key o)", \
                board.action_toggle_seeds
        for title in COLUMNS:
            yield f"Sort by {title}", "again: the other way round", partial(board.sort_by, title)
        for info in board.analyses:
            if info.id != board.opened_id:
                yield (f"Open analysis {info.id}", f"{info.method} · target {info.target} · {info.n} images",
                       partial(board.open_by_id, info.id))
