"""The optional remote LLM against a fake OpenAI-compatible server on localhost that records and
checks what it was sent: only the question text and the retrieved passages, never the scene,
location, images, audio or vehicle data; the local answer is the fallback when it fails."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vehicle_assist.advisory import remote
from vehicle_assist.advisory.run import AdvisoryRun
from vehicle_assist.config import AdvisorySettings, RemoteSettings
from vehicle_assist.messages import Passage, Scene

P126 = Passage("126", "General rules", "Stopping distances",
               "Allow at least a two-second gap between you and the vehicle in front on high-speed roads. "
               "The gap should be at least doubled on wet roads.")
P227 = Passage("227", "Adverse weather", "Wet weather",
               "In wet weather, stopping distances will be at least double those required for stopping on dry roads.")
QUESTION = "why do I need to leave a bigger gap behind the car in front when the road is wet"
FORBIDDEN = ("speed_mps", "distance_m", "lat", "lon", "latitude", "longitude", "image", "audio", "scene",
             "13.4", "cyclist 12")


class FakeOpenAI(ThreadingHTTPServer):
    """An OpenAI-compatible /v1/chat/completions that records requests and answers from a script."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.reply: dict | None = None
        self.status = 200
        self.delay_s = 0.0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server API)
        srv: FakeOpenAI = self.server  # type: ignore[assignment]
        body = self.rfile.read(int(self.headers["Content-Length"]))
        srv.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body),
                             "raw": body.decode()})
        time.sleep(srv.delay_s)
        out = json.dumps(srv.reply or {}).encode()
        self.send_response(srv.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args) -> None:
        pass


def chat(content: str) -> dict:
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}]}


@pytest.fixture
def server():
    srv = FakeOpenAI()
    srv.thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def settings_for(url: str, timeout_s: float = 1.0) -> AdvisorySettings:
    return AdvisorySettings(semantic_weight=0.0, remote=RemoteSettings(enabled=True, url=url, model="fake-7b",
                                                                       timeout_s=timeout_s))


class StaticRetriever:
    """Isolates the lane from the index: returns fixed real-looking passages."""

    def __init__(self, passages: tuple[Passage, ...]) -> None:
        self.passages = passages

    def search(self, text, scene=None, k=5):
        class Ret:
            pass

        r = Ret()
        r.passages, r.answerable, r.reason, r.timings = self.passages, True, "", {}
        return r


def check_sent_only_question_and_passages(req: dict) -> None:
    body = req["body"]
    assert req["path"] == "/v1/chat/completions"
    assert set(body) == {"model", "temperature", "max_tokens", "messages"}
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    user = body["messages"][1]["content"]
    assert QUESTION in user and P126.text in user and P227.text in user
    for word in FORBIDDEN:
        assert word not in req["raw"], f"{word!r} leaked to the remote endpoint"


def test_remote_answer_used_when_grounded(server, monkeypatch):
    monkeypatch.setenv("VA_REMOTE_API_KEY", "sk-test")
    server.reply = chat('{"cited": ["227"], "answer": "Stopping distances are at least double on wet roads."}')
    lane = AdvisoryRun(settings_for(server.url), StaticRetriever((P126, P227)))
    rep = asyncio.run(lane.execute_report(QUESTION, Scene(label="cyclist", distance_m=12, speed_mps=13.4), 0))
    assert rep.advisory.route == "remote" and rep.advisory.cited == ("227",) and not rep.fallback
    assert len(server.requests) == 1
    check_sent_only_question_and_passages(server.requests[0])
    assert server.requests[0]["headers"]["Authorization"] == "Bearer sk-test"


def test_remote_disabled_sends_nothing(server):
    s = settings_for(server.url).model_copy(update={"remote": RemoteSettings(enabled=False, url=server.url)})
    rep = asyncio.run(AdvisoryRun(s, StaticRetriever((P126, P227))).execute_report(QUESTION, None, 0))
    assert rep.advisory.route == "extractive" and server.requests == []


@pytest.mark.parametrize("fault,code", [("slow", "remote-timeout"), ("http500", "remote-http"),
                                        ("garbage", "remote-malformed"), ("ungrounded", "not grounded")])
def test_local_answer_is_the_fallback(server, fault, code):
    server.reply = chat('{"cited": ["126"], "answer": "Leave a gap."}')
    if fault == "slow":
        server.delay_s = 1.0
    elif fault == "http500":
        server.status = 500
    elif fault == "garbage":
        server.reply = chat("I think you should be careful.")
    elif fault == "ungrounded":
        server.reply = chat('{"cited": ["126"], "answer": "Leave a five-second gap."}')
    lane = AdvisoryRun(settings_for(server.url, timeout_s=0.3), StaticRetriever((P126, P227)))
    rep = asyncio.run(lane.execute_report(QUESTION, None, 0))
    assert rep.advisory.route == "extractive" and rep.advisory.text and not rep.advisory.refused
    assert code in rep.fallback
    check_sent_only_question_and_passages(server.requests[0])


def test_offline_endpoint_raises_a_coded_error():
    srv = FakeOpenAI()  # bound but never served, then closed: nothing listens on the port
    url = srv.url
    srv.server_close()
    with pytest.raises(remote.RemoteError) as err:
        remote.ask(QUESTION, [P126], RemoteSettings(enabled=True, url=url, timeout_s=0.5))
    assert err.value.code in ("remote-offline", "remote-timeout")


def test_parse_reply_drops_ids_that_were_not_retrieved():
    answer, cited = remote.parse_reply(chat('{"cited": ["126", "999"], "answer": "Leave two seconds."}'), ["126"])
    assert cited == ("126",) and answer == "Leave two seconds."
