"""Real receivers for the notification tests (tests/notify.rs).

Started with a webhook secret; prints one JSON line {"http": port, "smtp": port}
once both listen, then records everything received (with `t`, its arrival
time in Unix seconds), one JSON object per line, into the file given:
- an SMTP server (aiosmtpd) keeping each message's headers and body;
- an HTTP server whose paths are receivers:
  /hook          verifies the Standard Webhooks signature with the
                 `standardwebhooks` package, answers 204 (400 if it fails);
  /flaky/N       answers 500 to its first N requests, then as /hook;
  /busy          answers 429 with Retry-After: 1 to its first request, then as /hook;
  /hang          never answers (the sender's timeout must end it);
  /slow          waits 300 ms, then as /hook;
  /slack         parses the blocks with slack_sdk's Block Kit models: 200 "ok",
                 400 if a block does not parse;
  /pagerduty     checks the Events API v2 fields: 202, or 400 naming the field.
Usage: receivers.py RECORD_FILE WEBHOOK_SECRET
"""

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from slack_sdk.models.blocks import Block
from standardwebhooks.webhooks import Webhook

record_path, secret = sys.argv[1], sys.argv[2]
lock = threading.Lock()
counts = {}


def record(entry):
    with lock:
        with open(record_path, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Mail:
    async def handle_DATA(self, server, session, envelope):
        text = envelope.content.decode("utf8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        headers = {}
        for line in head.split("\r\n"):
            if ":" in line and not line.startswith((" ", "\t")):
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        record({"kind": "email", "t": time.time(), "from": envelope.mail_from, "to": envelope.rcpt_tos,
                "headers": headers, "body": body})
        return "250 Message accepted"


def verify_webhook(headers, body):
    wh = Webhook(secret)
    wh.verify(body, {k.lower(): v for k, v in headers.items()})


PD_ACTIONS = {"trigger", "acknowledge", "resolve"}
PD_SEVERITIES = {"critical", "error", "warning", "info"}


def check_pagerduty(event):
    """The Events API v2 fields, as PagerDuty's documentation states them."""
    if not event.get("routing_key"):
        return "routing_key"
    if event.get("event_action") not in PD_ACTIONS:
        return "event_action"
    if not event.get("dedup_key") or len(event["dedup_key"]) > 255:
        return "dedup_key"
    if event["event_action"] == "trigger":
        p = event.get("payload") or {}
        if not p.get("summary") or len(p["summary"]) > 1024:
            return "payload.summary"
        if not p.get("source"):
            return "payload.source"
        if p.get("severity") not in PD_SEVERITIES:
            return "payload.severity"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # The head and the body are two writes: without this, the body waits for
    # the client's delayed ACK (about 40 ms) on every answer with a body.
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, text="", headers=()):
        data = text.encode()
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode()
        path = self.path
        with lock:
            counts[path] = counts.get(path, 0) + 1
            n = counts[path]
        entry = {"kind": "http", "t": time.time(), "path": path, "n": n, "headers": dict(self.headers.items()),
                 "body": json.loads(body) if body else None}
        if path == "/hang":
            record(entry)
            time.sleep(3600)
            return
        if path == "/slow":
            time.sleep(0.3)
        if path.startswith("/flaky/") and n <= int(path.split("/")[2]):
            entry["answer"] = 500
            record(entry)
            return self.answer(500, "failing on purpose")
        if path == "/busy" and n == 1:
            entry["answer"] = 429
            record(entry)
            return self.answer(429, "slow down", [("retry-after", "1")])
        if path == "/slack":
            try:
                blocks = Block.parse_all(entry["body"]["blocks"])
                if len(blocks) != len(entry["body"]["blocks"]) or any(b is None for b in blocks):
                    raise ValueError("a block slack_sdk does not know")
                for block in blocks:
                    block.validate_json()  # Block Kit's bounds (header text, fields, ...)
                entry["answer"] = 200
                record(entry)
                return self.answer(200, "ok")
            except Exception as e:  # noqa: BLE001 - any parse failure is a bad body
                entry["answer"] = 400
                entry["error"] = repr(e)
                record(entry)
                return self.answer(400, "invalid_blocks")
        if path == "/pagerduty":
            bad = check_pagerduty(entry["body"])
            entry["answer"] = 400 if bad else 202
            entry["error"] = bad
            record(entry)
            return self.answer(entry["answer"], json.dumps({"status": "invalid event", "errors": [bad]}) if bad else '{"status":"success"}')
        try:
            verify_webhook(dict(self.headers.items()), body)
            entry["verified"] = True
            entry["answer"] = 204
        except Exception as e:  # noqa: BLE001 - any verification failure is refused
            entry["verified"] = False
            entry["error"] = repr(e)
            entry["answer"] = 400
        record(entry)
        return self.answer(entry["answer"])


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A sender killed mid-request (the failover test) leaves a broken
        # pipe: expected, not worth a traceback.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


http = Server(("127.0.0.1", 0), Handler)
http.daemon_threads = True
# aiosmtpd's controller checks its server by connecting to the port it was
# given, so it needs a real one: a free port, found by binding.
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    smtp_port = probe.getsockname()[1]
# A fixed server name: aiosmtpd would otherwise look up this host's fully
# qualified name on every connection (a DNS query).
smtp = Controller(Mail(), hostname="127.0.0.1", port=smtp_port, server_hostname="receivers.test")
smtp.start()
print(json.dumps({"http": http.server_address[1], "smtp": smtp_port}), flush=True)
http.serve_forever()
