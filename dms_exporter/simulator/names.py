"""Place, channel and event names the population is built from (plain data, no logic)."""

from __future__ import annotations


def _split(text: str) -> tuple[str, ...]:
    return tuple(text.split("|"))


#: Regions in the order they appear (3 for a small DMS, up to 8), each with ten cities.
REGIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "US-West",
        _split(
            "Denver|Seattle|Portland|Phoenix|Salt Lake City|Boise|Las Vegas|"
            "San Diego|Sacramento|Albuquerque"
        ),
    ),
    (
        "US-Central",
        _split(
            "Chicago|Dallas|Kansas City|Minneapolis|St. Louis|Omaha|Des Moines|"
            "Milwaukee|Oklahoma City|Tulsa"
        ),
    ),
    (
        "US-East",
        _split(
            "New York|Boston|Philadelphia|Pittsburgh|Baltimore|Washington|Hartford|"
            "Buffalo|Richmond|Albany"
        ),
    ),
    (
        "US-South",
        _split(
            "Atlanta|Miami|Houston|Nashville|New Orleans|Charlotte|Tampa|"
            "Birmingham|Memphis|Jacksonville"
        ),
    ),
    (
        "Canada",
        _split("Toronto|Montréal|Vancouver|Calgary|Ottawa|Winnipeg|Québec|Halifax|Edmonton|Regina"),
    ),
    (
        "LATAM",
        _split(
            "São Paulo|Ciudad de México|Bogotá|Buenos Aires|Lima|Santiago|"
            "Guadalajara|Monterrey|Medellín|Quito"
        ),
    ),
    (
        "EMEA",
        _split(
            "London|Paris|Frankfurt|Madrid|Milano|Amsterdam|Warszawa|Dubai|Johannesburg|Stockholm"
        ),
    ),
    (
        "APAC",
        _split("Singapore|Sydney|Tokyo|Seoul|Mumbai|Jakarta|Manila|Auckland|Bangkok|Hong Kong"),
    ),
)
#: First letter of a station call sign, per region.
CALL_PREFIX = {
    "US-West": "K",
    "US-Central": "K",
    "US-East": "W",
    "US-South": "W",
    "Canada": "C",
    "LATAM": "X",
    "EMEA": "E",
    "APAC": "A",
}
SITE_KINDS = _split("Headend|Teleport|Hub|Uplink|Studio")
#: Cross-cutting groups: (id, name, name of the authorization set that targets it).
CATEGORIES = (
    ("g-affiliates", "Affiliates", "Affiliate Package"),
    ("g-cable", "Cable Headends", "Cable Package"),
    ("g-hospitality", "Hospitality", "Hospitality Package"),
)
NETWORKS = _split(
    "Network East|Network West|News 24|Sports One|Sports Two|Kids Zone|Movie Max|"
    "Music Live|Weather Now|Business Daily|Docs World|Drama One|Comedy Club|"
    "Classics|Travel Plus|Food Channel|Science Lab|History|Nature|Faith TV|"
    "Shop Direct|Latino Uno|Cinema 1|Event Channel"
)
VARIANTS = _split("HD|SD|4K|East HD|West HD|Plus|2 HD|3 HD")
TIERS = _split("BASIC|PREMIUM|SPORTS|EVENT")
EVENTS = _split(
    "Sunday Game|Championship Final|Fight Night PPV|Concert Special|Election Night|"
    "Motor Race|Tennis Open|Gala Awards"
)
