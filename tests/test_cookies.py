"""The DMS session's cookie jar: a cookie goes back only to the scheme, host and port that set
it (an IP address too), on its path, until it expires; every value it held can be masked."""

from __future__ import annotations

from http.cookies import SimpleCookie

from yarl import URL

from dms_exporter.dms.cookies import OriginJar

DMS = "http://127.0.0.1:8480/dms-api/v1"


def sent(jar: OriginJar, url: str) -> dict[str, str]:
    return {name: m.value for name, m in jar.filter_cookies(URL(url)).items()}


async def test_a_cookie_goes_back_only_to_its_own_origin() -> None:
    jar = OriginJar()
    jar.update_cookies(SimpleCookie("JSESSIONID=s1; Path=/; HttpOnly"), URL(DMS + "/login"))
    assert sent(jar, DMS + "/devices?page=2") == {"JSESSIONID": "s1"}
    for elsewhere in (
        "http://127.0.0.1:8481/dms-api/v1/devices",  # another port: a standby on the same host
        "https://127.0.0.1:8480/dms-api/v1/devices",  # another scheme
        "http://127.0.0.2:8480/dms-api/v1/devices",  # another address
        "http://localhost:8480/dms-api/v1/devices",  # the same machine by another name
    ):
        assert sent(jar, elsewhere) == {}, elsewhere


async def test_a_cookie_keeps_to_its_path_and_its_lifetime() -> None:
    now = [1000.0]
    jar = OriginJar(clock=lambda: now[0])
    jar.update_cookies(SimpleCookie("ui=u1; Path=/ui"), URL(DMS + "/login"))
    jar.update_cookies(SimpleCookie("api=a1; Path=/dms-api; Max-Age=60"), URL(DMS + "/login"))
    assert sent(jar, DMS + "/devices") == {"api": "a1"}
    assert sent(jar, "http://127.0.0.1:8480/ui/index.html") == {"ui": "u1"}
    now[0] += 61
    assert sent(jar, DMS + "/devices") == {}
    jar.update_cookies(SimpleCookie("ui=; Path=/ui; Max-Age=0"), URL(DMS + "/logout"))
    assert sent(jar, "http://127.0.0.1:8480/ui/index.html") == {}
    assert len(jar) == 0


async def test_every_value_held_stays_known_for_masking() -> None:
    jar = OriginJar()
    for value in ("s1", "s2"):
        jar.update_cookies(SimpleCookie(f"JSESSIONID={value}; Path=/"), URL(DMS + "/login"))
    assert sent(jar, DMS + "/devices") == {"JSESSIONID": "s2"}
    assert set(jar.values) == {"s1", "s2"}
    assert set(OriginJar(remembered=jar.values).values) == {"s1", "s2"}
