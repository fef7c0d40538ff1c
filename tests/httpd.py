#!/usr/bin/env python3
"""The tests' own HTTP server: well-behaved and faulty answers by path.

    httpd.py PORT_FILE [--tls DIR [--verify-client yes]] [--port N]

Listens on a free loopback port (port N with --port: the same server
back after a stop) and writes the port number to PORT_FILE
once it accepts connections. With --tls it makes a CA and a server
certificate for 127.0.0.1 and localhost in DIR (DIR/ca.pem is the CA for
clients) with the openssl command, and speaks HTTPS; with --verify-client
it also makes DIR/client.pem and DIR/client.key, signed by that CA, and
refuses clients without a certificate of that CA. Each connection is
served by its own thread, keep-alive as HTTP/1.1 does.

Paths (GET, POST, any method):
  /echo              200, JSON {method, path, headers (names lower-cased), body,
                     conn (the connection's number), conn_requests (requests so far on it)}
  /status/N          status N, body "status N", header X-Test: yes
  /delay/MS          waits MS milliseconds, then 200 "delayed MS"
  /big/N             200 with N bytes of "x"
  /slow/N/MS         200 with N chunks of "chunk\\n", MS milliseconds apart
  /hang              reads the request, never answers
  /reset             announces 1000 bytes, sends 100, resets the connection
  /garbage           answers with text that is not HTTP and closes
  /close             200 "bye", Connection: close
  /stats             JSON {connections (accepted so far), requests,
                     hanging (/hang requests whose client is still there)}

A receiver of the WebHook's POSTs, recording them in order of arrival:
  /hook              records the request, then answers as /control said
                     (default: 200 at once)
  /control           the body is JSON {"status": N, "delay_ms": MS}: how
                     /hook answers from now on
  /recorded          one line per /hook request so far, in order:
                     "<clientid> <payload>" taken from its JSON body
                     (clientid, else from_client_id; "-" when absent)
  /recorded/raw/N    the body of the Nth /hook request (from 0), as sent
  /recorded/header/N/NAME  the value of header NAME of the Nth request
  /recorded/concurrency    the most /hook requests answered at once so far
"""

import json
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.connections = 0
        self.hanging = 0
        self.requests = 0
        self.recorded = []  # (headers, body) of each /hook request
        self.hook_mode = {"status": 200, "delay_ms": 0}
        self.hook_now = 0  # /hook requests being answered, and the most at once
        self.hook_max = 0

    def handle_error(self, request, client_address):
        pass  # clients that refuse the certificate or go away are expected here

    def count(self, what, by=1):
        with self.lock:
            setattr(self, what, getattr(self, what) + by)
            return getattr(self, what)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        self.conn_id = self.server.count("connections")
        self.conn_requests = 0

    def reply(self, status, body, headers=()):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("X-Conn", str(self.conn_id))
        # Neither a length nor a body for those that have none.
        if status in (204, 304) or status < 200:
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def handle_any(self):
        self.conn_requests += 1
        self.server.count("requests")
        body = self.read_body()
        parts = self.path.split("?")[0].strip("/").split("/")
        action = getattr(self, "do_" + parts[0], None) if parts[0] else None
        if not action:
            self.reply(404, "no such path")
            return
        action(parts[1:], body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = handle_any

    def do_echo(self, args, body):
        self.reply(200, json.dumps({
            "method": self.command,
            "path": self.path,
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body": body.decode("latin-1"),
            "conn": self.conn_id,
            "conn_requests": self.conn_requests,
        }), [("Content-Type", "application/json")])

    def do_status(self, args, body):
        self.reply(int(args[0]), "status " + args[0], [("X-Test", "yes")])

    def do_delay(self, args, body):
        time.sleep(int(args[0]) / 1000)
        self.reply(200, "delayed " + args[0])

    def do_big(self, args, body):
        self.reply(200, b"x" * int(args[0]))

    def do_slow(self, args, body):
        n, ms = int(args[0]), int(args[1])
        self.send_response(200)
        self.send_header("Content-Length", str(6 * n))
        self.end_headers()
        for _ in range(n):
            self.wfile.write(b"chunk\n")
            self.wfile.flush()
            time.sleep(ms / 1000)

    def do_hang(self, args, body):
        # Until the client goes away.
        self.server.count("hanging")
        try:
            self.connection.settimeout(None)
            while self.connection.recv(1024):
                pass
        finally:
            self.server.count("hanging", -1)
        self.close_connection = True

    def do_reset(self, args, body):
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        self.wfile.write(b"y" * 100)
        self.wfile.flush()
        time.sleep(0.05)
        # A zero linger time makes close send a reset instead of a FIN.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def do_garbage(self, args, body):
        self.wfile.write(b"this is not HTTP at all\r\n\r\n")
        self.wfile.flush()
        self.close_connection = True

    def do_close(self, args, body):
        self.reply(200, "bye", [("Connection", "close")])
        self.close_connection = True

    def do_stats(self, args, body):
        self.reply(200, json.dumps({"connections": self.server.connections,
                                    "hanging": self.server.hanging,
                                    "requests": self.server.requests}),
                   [("Content-Type", "application/json")])


    def do_hook(self, args, body):
        with self.server.lock:
            self.server.recorded.append(({k.lower(): v for k, v in self.headers.items()}, body))
            mode = dict(self.server.hook_mode)
            self.server.hook_now += 1
            self.server.hook_max = max(self.server.hook_max, self.server.hook_now)
        time.sleep(mode["delay_ms"] / 1000)
        with self.server.lock:
            self.server.hook_now -= 1
        self.reply(mode["status"], "hook " + str(mode["status"]))

    def do_control(self, args, body):
        with self.server.lock:
            self.server.hook_mode.update(json.loads(body))
        self.reply(200, "ok")

    def do_recorded(self, args, body):
        with self.server.lock:
            recorded = list(self.server.recorded)
        if args and args[0] == "raw":
            self.reply(200, recorded[int(args[1])][1])
            return
        if args and args[0] == "concurrency":
            self.reply(200, str(self.server.hook_max))
            return
        if args and args[0] == "header":
            self.reply(200, recorded[int(args[1])][0].get(args[2].lower(), ""))
            return
        lines = []
        for _, raw in recorded:
            try:
                event = json.loads(raw)
            except ValueError:
                event = {}
            who = event.get("clientid") or event.get("from_client_id") or "-"
            lines.append("%s %s\n" % (who, event.get("payload", "-")))
        self.reply(200, "".join(lines))


def make_certs(d):
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=d, check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", "-batch", *ec, "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=exhookd test CA")
    openssl("req", "-new", "-batch", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "2", "-days", "2", "-extfile", "san.ext", "-out", "server.pem")
    openssl("req", "-new", "-batch", *ec, "-keyout", "client.key", "-out", "client.csr",
            "-subj", "/CN=exhookd test client")
    openssl("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", "3", "-days", "2", "-out", "client.pem")


def exit_with_parent():
    # A test that crashes leaves no server behind.
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def main():
    threading.Thread(target=exit_with_parent, daemon=True).start()
    port_file = sys.argv[1]
    opts = dict(zip(sys.argv[2::2], sys.argv[3::2]))
    srv = Server(("127.0.0.1", int(opts.get("--port", 0))), Handler)
    if "--tls" in opts:
        tls_dir = opts["--tls"]
        make_certs(tls_dir)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(tls_dir, "server.pem"),
                            os.path.join(tls_dir, "server.key"))
        if opts.get("--verify-client") == "yes":
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(os.path.join(tls_dir, "ca.pem"))
        # The handshake happens in each connection's thread, on its first read.
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True,
                                     do_handshake_on_connect=False)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
