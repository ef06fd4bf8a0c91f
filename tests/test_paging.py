"""dms/paging.py: each style's requests, its end, the page cap and a repeated page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from dms_exporter.config import Envelope, Paging
from dms_exporter.dms.paging import Page, PagingError, collect, link_next

ITEMS = [{"id": str(i)} for i in range(25)]
#: one paging of each style that reads the fields "c" (cursor) and "next" (link)
STYLES = {
    "offset": Paging(),
    "page": Paging(style="page", offset_param=None, page_param="p", size_param="s"),
    "cursor": Paging(style="cursor", offset_param=None, size_param=None, cursor_path="c",
                     cursor_param="c"),
    "next": Paging(style="next", offset_param=None, size_param=None, next_path="next"),
}  # fmt: skip


class Fake:
    """Answers pages of ITEMS as ``answer(target, params)`` builds them; records the calls."""

    def __init__(self, answer: Any) -> None:
        self.answer = answer
        self.calls: list[tuple[str, dict[str, str] | None]] = []

    async def __call__(self, target: str, params: Mapping[str, str] | None) -> Page:
        self.calls.append((target, None if params is None else dict(params)))
        return self.answer(target, params)


async def run(fake: Fake, paging: Paging, envelope: Envelope | None = None, **kw: Any) -> Any:
    return await collect(
        fake, "/devices", {"view": "full"}, envelope or Envelope(), paging,
        page_size=kw.get("page_size", 10), max_pages=kw.get("max_pages", 100),
    )  # fmt: skip


async def test_page_numbers_from_zero_until_the_total() -> None:
    def answer(_: str, p: Mapping[str, str]) -> Page:
        start = int(p["page"]) * int(p["size"])
        return Page({"content": ITEMS[start : start + 10], "totalElements": 25})

    fake = Fake(answer)
    paging = Paging(style="page", offset_param=None, page_param="page", size_param="size",
                    first_page=0)  # fmt: skip
    items = await run(fake, paging, Envelope(items="content", total="totalElements"))
    assert items == ITEMS
    assert [c[1] for c in fake.calls] == [
        {"view": "full", "page": str(n), "size": "10"} for n in range(3)
    ]


async def test_a_next_link_is_followed_until_it_is_null() -> None:
    def answer(target: str, _: Any) -> Page:
        n = 0 if target == "/devices" else int(target.rsplit("=", 1)[1])
        link = f"/api/devices?page={n + 1}" if n < 2 else None
        return Page({"results": ITEMS[n * 10 : n * 10 + 10], "next": link})

    fake = Fake(answer)
    items = await run(
        fake,
        Paging(style="next", offset_param=None, size_param=None, next_path="next"),
        Envelope(items="results", total=None),
    )
    assert items == ITEMS
    assert [c[0] for c in fake.calls] == ["/devices", "/api/devices?page=1", "/api/devices?page=2"]
    assert fake.calls[1][1] is None  # the link carries its own parameters


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://dms/x?page=2>; rel="next", <https://dms/x?page=9>; rel="last"',
         "https://dms/x?page=2"),
        ('<https://dms/x?page=1>; rel="prev", <https://dms/x?page=3>; rel=next',
         "https://dms/x?page=3"),
        ('<https://dms/x?page=3>; rel="next prefetch"', "https://dms/x?page=3"),
        ('<https://dms/x?page=9>; rel="last"', None),
        (None, None),
    ],
)  # fmt: skip
def test_link_header(header: str | None, expected: str | None) -> None:
    assert link_next(header) == expected


async def test_a_cursor_that_comes_back_is_an_error_not_a_loop() -> None:
    fake = Fake(lambda _t, p: Page({"items": ITEMS[:10] if "after" not in p else ITEMS[10:20],
                                    "next": "abc"}))  # fmt: skip
    paging = Paging(style="cursor", offset_param=None, size_param=None, cursor_path="next",
                    cursor_param="after")  # fmt: skip
    with pytest.raises(PagingError, match="the cursor 'abc' came back again"):
        await run(fake, paging, Envelope(total=None))
    assert len(fake.calls) == 2


@pytest.mark.parametrize("style", list(STYLES))
async def test_every_style_keeps_the_page_cap(style: str) -> None:
    counter = iter(range(10**6))

    def endless(_t: str, _p: Any) -> Page:
        n = next(counter)
        return Page({"items": [{"id": f"{n}-{i}"} for i in range(10)], "c": f"c{n}",
                     "next": f"/devices?n={n}"})  # fmt: skip

    paging = STYLES[style]
    fake = Fake(endless)
    with pytest.raises(PagingError, match="max_pages=4") as caught:
        await run(fake, paging, Envelope(total=None), max_pages=4)
    assert caught.value.page_limit and len(fake.calls) == 4


@pytest.mark.parametrize("style", list(STYLES))
async def test_every_style_stops_on_an_empty_page(style: str) -> None:
    answers = iter([ITEMS[:10], []])
    fake = Fake(lambda _t, _p: Page({"items": next(answers), "c": "x", "next": "/devices?2"}))
    paging = STYLES[style]
    assert await run(fake, paging, Envelope(total=None)) == ITEMS[:10]
    assert len(fake.calls) == 2


async def test_a_wrong_items_path_names_the_path_and_the_keys() -> None:
    fake = Fake(lambda _t, _p: Page({"data": ITEMS, "meta": {}}))
    with pytest.raises(
        PagingError, match=r"no list at 'items' in the answer \(its keys: data, meta"
    ):
        await run(fake, Paging())


@pytest.mark.parametrize("style", list(STYLES))
async def test_every_style_fails_a_walk_that_ends_short_of_the_total(style: str) -> None:
    answers = iter([ITEMS[:10], []])
    fake = Fake(lambda _t, _p: Page({"items": next(answers), "total": 25, "c": "x",
                                     "next": "/devices?2"}))  # fmt: skip
    with pytest.raises(PagingError, match="with 10 of the 25 items the DMS reports at 'total'"):
        await run(fake, STYLES[style])
    assert fake.calls and len(fake.calls) <= 2


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"results": ITEMS[:10], "count": 25}, "count"),
        ({"results": ITEMS[:10], "meta": {"total": 25}}, "meta.total"),
        ({"results": ITEMS[:10], "page": {"size": 10, "totalElements": 25}}, "page.totalElements"),
    ],
)
async def test_a_total_at_a_usual_name_exposes_a_walk_cut_short(
    body: dict[str, Any], where: str
) -> None:
    # envelope.total left at "total", which the answer lacks; the DMS ignores offset and limit
    fake = Fake(lambda _t, _p: Page(body))
    stats: dict[str, Any] = {}
    with pytest.raises(PagingError, match=f"10 of the 25 items the DMS reports at '{where}'"):
        await collect(fake, "/devices", {}, Envelope(items="results"), Paging(), page_size=100,
                      max_pages=100, stats=stats)  # fmt: skip
    assert (stats["total"], stats["total_at"], stats["items"]) == (25, where, 10)


async def test_no_total_no_check_and_a_shrinking_list_is_whole() -> None:
    # total: null says the DMS sends none: a "count" is not taken for one
    fake = Fake(lambda _t, _p: Page({"results": ITEMS[:10], "count": 25}))
    envelope = Envelope(items="results", total=None)
    assert await run(fake, Paging(), envelope, page_size=100) == ITEMS[:10]
    # an item deleted during the walk: the last page's total is the one that counts
    pages = iter([{"items": ITEMS[:10], "total": 25}, {"items": ITEMS[11:25], "total": 24}])
    fake = Fake(lambda _t, _p: Page(next(pages)))
    assert len(await run(fake, Paging())) == 24


async def test_a_walk_cut_by_the_probe_page_cap_is_not_called_short() -> None:
    fake = Fake(lambda _t, p: Page({"items": ITEMS[int(p["offset"]) :][:10], "total": 25}))
    stats: dict[str, Any] = {}
    items = await collect(fake, "/devices", {}, Envelope(), Paging(), page_size=10,
                          max_pages=1, stats=stats, truncate=True)  # fmt: skip
    assert items == ITEMS[:10] and stats["truncated"] and stats["total"] == 25
