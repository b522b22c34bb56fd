"""botocore (over urllib3) and urllib3 used directly, against the local server."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import botocore.session
import urllib3

import dexcost


def _client(server: Any, service: str, host: str) -> Any:
    return botocore.session.get_session().create_client(
        service,
        region_name="us-east-1",
        endpoint_url=server.url(host, ""),
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
    )


def test_botocore_body_priced_and_recorded_once(
    server: Any, tracker: Any, events: Any, price: Any
) -> None:
    server.route(
        "/",
        {"DocumentMetadata": {"Pages": 3}, "DetectDocumentTextModelVersion": "1.0", "Blocks": []},
        headers={"Content-Type": "application/x-amz-json-1.1"},
    )
    client = _client(server, "textract", "textract.us-east-1.amazonaws.com")
    with dexcost.task("ocr"):
        result = client.detect_document_text(Document={"Bytes": b"%PDF-1.4"})
    assert result["DocumentMetadata"] == {"Pages": 3}
    (event,) = events()  # not again by urllib3 underneath
    assert event["service_name"] == "amazon_textract"
    assert Decimal(event["cost_usd"]) == price("amazon_textract", 3)
    assert event["details"]["library"] == "botocore"
    assert event["details"]["host"] == "textract.us-east-1.amazonaws.com"


def test_botocore_streamed_output_priced_from_headers(
    server: Any, tracker: Any, events: Any, price: Any
) -> None:
    audio = b"ID3" + bytes(5000)
    server.route(
        "/v1/speech",
        audio,
        headers={"Content-Type": "audio/mpeg", "x-amzn-RequestCharacters": "42"},
    )
    client = _client(server, "polly", "polly.us-east-1.amazonaws.com")
    with dexcost.task("tts"):
        result = client.synthesize_speech(Text="hello there", OutputFormat="mp3", VoiceId="Joanna")
        assert result["AudioStream"].read() == audio
    (event,) = events()
    assert Decimal(event["cost_usd"]) == price("amazon_polly", 42)


def test_urllib3_direct_preloaded_body(server: Any, tracker: Any, events: Any) -> None:
    server.route("/search", {"costDollars": {"total": 0.011}}, gzip=True)
    with dexcost.task("t"), urllib3.PoolManager() as pool:
        response = pool.request("POST", server.url("api.exa.ai", "/search"))
    assert json.loads(response.data) == {"costDollars": {"total": 0.011}}
    (event,) = events()
    assert (event["cost_usd"], event["details"]["library"]) == ("0.011", "urllib3")


def test_urllib3_unread_stream_priced_from_headers_and_left_intact(
    server: Any, tracker: Any, events: Any
) -> None:
    server.route("/search", {"costDollars": {"total": 0.4}})
    with dexcost.task("t"), urllib3.PoolManager() as pool:
        response = pool.request("POST", server.url("api.exa.ai", "/search"), preload_content=False)
        (event,) = events()
        assert event["cost_confidence"] == "estimated"
        assert json.loads(response.read()) == {"costDollars": {"total": 0.4}}
        response.release_conn()
