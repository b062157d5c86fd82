"""Hostile requests to ``srjudge serve``: body, pixel, prompt, model-call and Host limits.

In process with a fake backend that counts model calls, and on the real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from srjudge.vlm.images import data_uri
from tests.serve.helpers import _auth, _chat, _images


# ---------------------------------------------------------------- hostile requests (issue 14)
# In-process checks use a fake backend that counts model calls, so "refused before the model" is
# measured; the real server above checks what only uvicorn shows (chunked bodies on a socket).
def _png_bomb(side: int = 13000) -> bytes:
    """A valid 1-bit PNG of side x side black pixels: ~20 KB of file, 169 M pixels once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    packer = zlib.compressobj(9)
    row = bytes(1 + (side + 7) // 8)  # filter byte + packed bits
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _bomb_uri() -> str:
    import base64

    return "data:image/png;base64," + base64.b64encode(_png_bomb()).decode("ascii")


class _CountingBackend:
    """Stands in for the model: answers every request with ``text`` and counts the calls."""

    def __init__(self, text: str = "excellent") -> None:
        from srjudge.vlm.backends.base import VLMBackend
        from srjudge.vlm.request import Completion

        outer = self

        class Backend(VLMBackend):
            kind = "hf"

            @property
            def model_id(self) -> str:
                return "fake-vlm"

            def complete(self, requests, on_result=None):  # type: ignore[no-untyped-def]
                outer.calls += len(requests)
                return [Completion(text=text, model="fake-vlm") for _ in requests]

        self.calls = 0
        self.backend = Backend()


def _client(backend: object, base_url: str = "http://127.0.0.1:8000", **options: object):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from srjudge.serve.app import create_app

    return TestClient(create_app(backend, **options), base_url=base_url)  # type: ignore[arg-type]


def _asgi_post(app: object, path: str, chunks: Iterator[bytes], headers: list[tuple[bytes, bytes]]):  # type: ignore[no-untyped-def]
    """Drive the ASGI app directly with a chunked body; returns (status, body, chunks read)."""
    import asyncio

    read = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal read
        chunk = next(chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        read += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))  # type: ignore[operator]
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")  # type: ignore[misc]
    return start["status"], body, read


def test_chunked_body_is_counted_and_reading_stops_at_the_limit() -> None:
    from srjudge.serve.app import create_app

    fake = _CountingBackend()
    app = create_app(fake.backend, max_body_bytes=1024 * 1024)  # type: ignore[arg-type]
    chunk = 64 * 1024
    five_mb = iter([b"A" * chunk] * (5 * 1024 * 1024 // chunk))
    headers = [(b"host", b"127.0.0.1:8000"), (b"transfer-encoding", b"chunked")]
    status, body, read = _asgi_post(app, "/judge/score", five_mb, headers)
    assert status == 413 and b"above 1,048,576 bytes" in body
    assert read == 1024 * 1024 // chunk + 1  # stopped one chunk past the limit, not after 5 MB
    assert fake.calls == 0
    # Under the limit, a chunked body goes through to the endpoint as before.
    small = iter([b'{"messages": [{"role": "user", ', b'"content": "hi"}], "max_tokens": 2}'])
    headers.append((b"content-type", b"application/json"))
    status, body, _ = _asgi_post(app, "/v1/chat/completions", small, headers)
    assert status == 200, body
    # Without Content-Length through the test client too (one message of 3 MB).
    client = _client(fake.backend, max_body_bytes=1024 * 1024)
    response = client.post("/judge/score", content=iter([b"A" * (3 * 1024 * 1024)]))
    assert response.status_code == 413 and "above 1,048,576" in response.text


def test_chunked_body_on_the_real_server(server: str) -> None:
    def body(total: int) -> Iterator[bytes]:
        for _ in range(total // 65536):
            yield b"A" * 65536

    answered = 0
    for total in (3 * 1024 * 1024, 5 * 1024 * 1024):
        try:
            response = httpx.post(
                server + "/judge/score",
                content=body(total),
                headers={**_auth(), "content-type": "application/json"},
                timeout=30,
            )
        except httpx.TransportError:
            continue  # the server may close the socket while the client still writes: refused all the same
        assert response.status_code == 413, response.text
        assert "above 1,048,576 bytes" in response.text
        answered += 1
    assert answered >= 1
    assert httpx.get(server + "/health").status_code == 200


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_get_422_not_500(number: str) -> None:
    fake = _CountingBackend()
    client = _client(fake.backend)
    chat = b'{"messages": [{"role": "user", "content": "hi"}], "temperature": %s}' % number.encode()
    response = client.post("/v1/chat/completions", content=chat, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "temperature: NaN and infinity are not accepted" in response.json()["error"]["message"]
    judge = b'{"images": ["x"], "temperature": %s, "unknown": %s}' % (number.encode(), number.encode())
    response = client.post("/judge/score", content=judge, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    # The echoed inputs are strings, valid JSON for any client.
    assert {e["input"] for e in response.json()["detail"]} == {str(float(number))}
    assert fake.calls == 0


def test_nan_temperature_on_the_real_server(server: str) -> None:
    response = httpx.post(
        server + "/v1/chat/completions",
        content=b'{"messages": [{"role": "user", "content": "hi"}], "temperature": NaN}',
        headers={**_auth(), "content-type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 422 and "NaN" in response.text


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_image_bomb_is_refused_from_its_header(monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageFile

    from srjudge.vlm.images import ImageTooLarge, decode_data_uri

    uri = _bomb_uri()
    assert len(uri) < 64 * 1024  # small bytes, 13000 x 13000 pixels

    def no_decoding(self: object) -> None:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageTooLarge, match="13000x13000"):
        decode_data_uri(uri, max_pixels=16_000_000)
    fake = _CountingBackend()
    client = _client(fake.backend)
    for path, body in [
        ("/judge/score", {"images": [uri]}),
        ("/judge/compare", {"a": uri, "b": uri}),
        (
            "/v1/chat/completions",
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": uri}}]}]},
        ),
    ]:
        response = client.post(path, json=body)
        assert response.status_code == 413, response.text
        assert "13000x13000 is above the limit of 16,000,000 pixels" in response.text
    assert fake.calls == 0


def test_image_bomb_on_the_real_server(server: str) -> None:
    response = httpx.post(
        server + "/judge/score", json={"images": [_bomb_uri()]}, headers=_auth(), timeout=30
    )
    assert response.status_code == 413 and "13000x13000" in response.text


def test_image_formats_are_limited() -> None:
    import base64

    fake = _CountingBackend()
    client = _client(fake.backend)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n"
    uri = "data:image/eps;base64," + base64.b64encode(eps).decode()
    response = client.post("/judge/score", json={"images": [uri]})
    assert response.status_code == 400 and "not a decodable" in response.text


def test_long_prompts_are_refused() -> None:
    fake = _CountingBackend()
    client = _client(fake.backend)
    response = client.post("/v1/chat/completions", json=_chat("x" * 80_000))
    assert response.status_code == 413
    assert "80,000 characters" in response.text and "limit is 8,000" in response.text
    # Counted over every message and text part.
    parts = [{"type": "text", "text": "y" * 3000}] * 2
    split = {"messages": [{"role": "system", "content": "z" * 3000}, {"role": "user", "content": parts}]}
    assert client.post("/v1/chat/completions", json=split).status_code == 413
    assert fake.calls == 0
    assert client.post("/v1/chat/completions", json=_chat("x" * 8000)).status_code == 200
    assert fake.calls == 1
    wider = _client(fake.backend, max_prompt_chars=100_000)
    assert wider.post("/v1/chat/completions", json=_chat("x" * 80_000)).status_code == 200


def test_long_prompt_on_the_real_server(server: str) -> None:
    response = httpx.post(
        server + "/v1/chat/completions", json=_chat("x" * 80_000), headers=_auth(), timeout=30
    )
    assert response.status_code == 413 and "limit is 8,000" in response.text


def test_model_calls_per_request_are_capped() -> None:
    fake = _CountingBackend()
    client = _client(fake.backend)
    uris = [data_uri(img) for img in _images(64, 8)]
    hostile = {"images": uris, "protocol": "pairwise", "samples": 32}
    response = client.post("/judge/rank", json=hostile)
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    # 2016 pairs x 2 orders x 32 samples x 3 attempts
    assert "could make 387,072 model calls" in message and "the limit is 256" in message
    response = client.post("/judge/score", json={**hostile, "protocol": "level"})
    assert response.status_code == 422 and "6,144 model calls" in response.text
    response = client.post("/judge/compare", json={"a": uris[0], "b": uris[1], "samples": 32, "retries": 10})
    assert response.status_code == 422 and "704 model calls" in response.text  # 2 x 32 x 11
    assert client.post("/judge/rank", json={**hostile, "budget": 10**12}).status_code == 422
    assert fake.calls == 0
    # A budget keeps a pairwise ranking within the cap: 4 pairs x 2 orders x 3 attempts.
    budgeted = {"images": uris[:8], "protocol": "pairwise", "budget": 8, "retries": 2}
    response = client.post("/judge/rank", json=budgeted)
    assert response.status_code == 200, response.text
    assert fake.calls <= 24
    assert client.post("/judge/rank", json={**hostile, "samples": 1}).status_code == 422
    capped = _client(fake.backend, max_model_calls=10_000)
    assert capped.post("/judge/score", json={**hostile, "protocol": "level", "retries": 0}).status_code == 200


@pytest.mark.parametrize(
    "protocol,samples,retries,budget",
    [("level", 2, 1, None), ("audit", 1, 2, None), ("pairwise", 2, 1, None), ("pairwise", 1, 2, 8)],
)
def test_worst_case_model_calls_match_the_judge(
    protocol: str, samples: int, retries: int, budget: int | None
) -> None:
    from srjudge.judges.vlm import VLMJudge, VLMJudgeConfig
    from srjudge.serve.limits import worst_case_model_calls

    # An answer no protocol can parse: every sample is retried to the end, the worst case.
    fake = _CountingBackend(text="???")
    config = VLMJudgeConfig(
        backend="hf",
        backend_options={"model": "fake-vlm"},
        protocol=protocol,
        samples=samples,
        retries=retries,
        budget=budget,
        cache="off",
    )
    judge = VLMJudge(config, backend=fake.backend)  # type: ignore[arg-type]
    judge.score_many(_images(5, 8))
    expected = worst_case_model_calls(protocol, 5, samples=samples, retries=retries, budget=budget)
    assert fake.calls == expected


def test_host_header_is_checked_without_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from srjudge.serve.limits import host_name

    monkeypatch.delenv("SRJUDGE_SERVE_ALLOWED_HOSTS", raising=False)
    assert host_name("LocalHost:8000") == "localhost" and host_name("[::1]:80") == "::1"
    assert host_name("::1") is None and host_name("a:b") is None and host_name("") is None
    fake = _CountingBackend()
    client = _client(fake.backend)
    for host in ("localhost", "localhost:8000", "127.0.0.1:1234", "[::1]:8000", "[::1]"):
        assert client.get("/health", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io", "x:y:z"):
        response = client.get("/v1/models", headers={"host": host})
        assert response.status_code == 421, host
        assert "is not served here" in response.text
    response = client.post("/v1/chat/completions", json=_chat("hi"), headers={"host": "rebound.example"})
    assert response.status_code == 421 and fake.calls == 0
    # Other names when configured: explicitly, or through the environment.
    lan = _client(fake.backend, allowed_hosts=["judge.lan"])
    assert lan.get("/health", headers={"host": "judge.lan:8000"}).status_code == 200
    assert lan.get("/health", headers={"host": "localhost"}).status_code == 421
    monkeypatch.setenv("SRJUDGE_SERVE_ALLOWED_HOSTS", "judge.lan, 10.0.0.5")
    from_env = _client(fake.backend)
    assert from_env.get("/health", headers={"host": "10.0.0.5:8000"}).status_code == 200
    assert from_env.get("/health", headers={"host": "evil.example"}).status_code == 421
    monkeypatch.setenv("SRJUDGE_SERVE_ALLOWED_HOSTS", "*")
    assert _client(fake.backend).get("/health", headers={"host": "anything"}).status_code == 200


def test_host_header_with_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRJUDGE_SERVE_ALLOWED_HOSTS", raising=False)
    fake = _CountingBackend()
    # With a token, any Host is accepted (a rebinding page cannot add the token) ...
    client = _client(fake.backend, token="t0k")
    auth = {"Authorization": "Bearer t0k"}
    assert client.get("/v1/models", headers={**auth, "host": "judge.example"}).status_code == 200
    assert client.get("/v1/models", headers={"host": "judge.example"}).status_code == 401
    # ... unless hosts are configured, which then hold too.
    strict = _client(fake.backend, token="t0k", allowed_hosts=["localhost"])
    assert strict.get("/v1/models", headers={**auth, "host": "judge.example"}).status_code == 421
    assert strict.get("/v1/models", headers={**auth, "host": "localhost:8000"}).status_code == 200
