"""A small OpenAI-compatible HTTP server for tests: /v1/chat/completions, /v1/responses,
/v1/embeddings, with ``"stream": true`` answered as server-sent events the way the OpenAI
API streams them (chat chunks with a final usage chunk when ``stream_options.include_usage``
is set; responses events ending in ``response.completed``). ``state`` holds the model and
system_fingerprint it reports (change them mid-test) and every request body it received."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self) -> None:
        self.model: str | None = None  # None: echo the model asked for
        self.fingerprint = "fp_one"
        self.requests: list[dict] = []


def _usage(n_in: int, n_out: int, responses: bool = False) -> dict:
    if responses:
        return {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
    return {"prompt_tokens": n_in, "completion_tokens": n_out, "total_tokens": n_in + n_out}


def make_handler(state: State):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            state.requests.append({"path": self.path, "body": body})
            asked = body.get("model")
            if asked == "missing-model":
                return self._send(404, {"error": {"message": "The model does not exist",
                                                  "type": "invalid_request_error",
                                                  "code": "model_not_found"}})
            model = state.model or asked
            if body.get("stream"):
                return self._stream(body, model)
            if self.path == "/v1/chat/completions":
                text = "echo: " + body["messages"][-1]["content"]
                return self._send(200, {
                    "id": "chatcmpl-1", "object": "chat.completion", "created": 1700000000,
                    "model": model, "system_fingerprint": state.fingerprint,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": _usage(len(body["messages"]), len(text.split()))})
            if self.path == "/v1/responses":
                text = "answer to " + (body["input"] if isinstance(body["input"], str)
                                       else "messages")
                return self._send(200, {
                    "id": "resp_1", "object": "response", "created_at": 1700000000,
                    "model": model, "status": "completed", "parallel_tool_calls": True,
                    "tool_choice": "auto", "tools": [],
                    "output": [{"type": "message", "id": "msg_1", "status": "completed",
                                "role": "assistant",
                                "content": [{"type": "output_text", "text": text,
                                             "annotations": []}]}],
                    "usage": _usage(3, len(text.split()), responses=True)})
            if self.path == "/v1/embeddings":
                inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
                return self._send(200, {
                    "object": "list", "model": model,
                    "data": [{"object": "embedding", "index": i,
                              "embedding": [float(len(t)), 0.5, -0.25]}
                             for i, t in enumerate(inputs)],
                    "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}})
            return self._send(404, {"error": {"message": "no route", "type": "not_found"}})

        def _events(self, body: dict, model: str):
            if self.path == "/v1/chat/completions":
                words = ("echo: " + body["messages"][-1]["content"]).split(" ")
                base = {"id": "chatcmpl-s", "object": "chat.completion.chunk",
                        "created": 1700000000, "model": model,
                        "system_fingerprint": state.fingerprint}
                yield None, {**base, "choices": [{"index": 0, "finish_reason": None,
                                                  "delta": {"role": "assistant"}}]}
                for i, word in enumerate(words):
                    yield None, {**base, "choices": [{"index": 0, "finish_reason": None,
                                                      "delta": {"content": (" " if i else "")
                                                                + word}}]}
                yield None, {**base, "choices": [{"index": 0, "finish_reason": "stop",
                                                  "delta": {}}]}
                if (body.get("stream_options") or {}).get("include_usage"):
                    yield None, {**base, "choices": [],
                                 "usage": _usage(len(body["messages"]), len(words))}
                return
            text = "answer to " + (body["input"] if isinstance(body["input"], str)
                                   else "messages")
            response = {"id": "resp_s", "object": "response", "created_at": 1700000000,
                        "model": model, "status": "in_progress", "parallel_tool_calls": True,
                        "tool_choice": "auto", "tools": [], "output": []}
            yield "response.created", {"type": "response.created", "sequence_number": 0,
                                       "response": response}
            for i, word in enumerate(text.split(" ")):
                yield "response.output_text.delta", {
                    "type": "response.output_text.delta", "sequence_number": i + 1,
                    "item_id": "msg_1", "output_index": 0, "content_index": 0,
                    "delta": (" " if i else "") + word, "logprobs": []}
            done = {**response, "status": "completed",
                    "output": [{"type": "message", "id": "msg_1", "status": "completed",
                                "role": "assistant",
                                "content": [{"type": "output_text", "text": text,
                                             "annotations": []}]}],
                    "usage": _usage(3, len(text.split()), responses=True)}
            yield "response.completed", {"type": "response.completed", "sequence_number": 99,
                                         "response": done}

        def _stream(self, body: dict, model: str) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.end_headers()
            try:
                for event, data in self._events(body, model):
                    head = f"event: {event}\n" if event else ""
                    self.wfile.write(f"{head}data: {json.dumps(data)}\n\n".encode())
                    self.wfile.flush()
                if self.path == "/v1/chat/completions":
                    self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
                pass
            self.close_connection = True

    return Handler


class OpenAIServer:
    def __init__(self) -> None:
        self.state = State()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> OpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
