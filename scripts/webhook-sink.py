#!/usr/bin/env python3
"""A webhook receiver for trying strata's `webhook` alerter without a Slack workspace:
every POST is answered 200 and its JSON body appended, one line each, to FILE.

    scripts/webhook-sink.py PORT FILE      (127.0.0.1 only)
"""
import http.server
import sys

PORT, FILE = int(sys.argv[1]), sys.argv[2]


class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        with open(FILE, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_HEAD(self):
        # What a Slack webhook answers to anything but a POST.
        self.send_response(405)
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Hook).serve_forever()
