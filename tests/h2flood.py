#!/usr/bin/env python3
"""HTTP/2 floods from one client without credentials, for the tests and for
measuring what they make exhookd hold. Standard library only.

  h2flood.py continuation HOST PORT MBYTES [SECONDS]
      The client preface and SETTINGS, a HEADERS frame without END_HEADERS
      for stream 1, then CONTINUATION frames full of complete header fields
      until MBYTES megabytes are sent, the server closes, or SECONDS pass.
      Prints the bytes sent and why it stopped: "done", "closed" or "timeout".
  h2flood.py idle HOST PORT CONNECTIONS ROUNDS HOLD_SECONDS
      ROUNDS times: open CONNECTIONS connections that send the preface and
      SETTINGS and nothing else, keep them HOLD_SECONDS, close them. Prints
      how many connections were opened and how many the server had closed
      by the end of each hold.
"""

import socket
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEADERS, SETTINGS, CONTINUATION = 0x1, 0x4, 0x9
MAX_FRAME = 16384  # the HTTP/2 default, which every server accepts


def frame(kind, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


def hpack_int(value, prefix_bits, first_byte=0):
    """An HPACK integer (RFC 7541 5.1) in a prefix of `prefix_bits`."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte | value])
    out = bytearray([first_byte | limit])
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def literal(name, value):
    """A literal header field without indexing, with a new name."""
    return b"\x00" + hpack_int(len(name), 7) + name + hpack_int(len(value), 7) + value


def continuation(host, port, mbytes, seconds):
    # Small complete fields: every frame adds thousands of header fields the
    # server must keep or refuse, each costing it far more than its 4 bytes.
    # (One field whose length never ends is refused by gRPC 1.51 after a few
    # MB; these are not.)
    field = literal(b"x", b"")
    payload = field * (MAX_FRAME // len(field))
    start = literal(b":path", b"/emqx.exhook.v3.HookProvider/OnClientAuthenticate")
    limit, deadline, sent = mbytes * 1024 * 1024, time.monotonic() + seconds, 0
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0, b"") + frame(HEADERS, 0, 1, start))
        chunk = frame(CONTINUATION, 0, 1, payload) * 64
        why = "done"
        try:
            while sent < limit:
                if time.monotonic() >= deadline:
                    why = "timeout"
                    break
                s.sendall(chunk)
                sent += len(chunk)
        except OSError:
            why = "closed"  # the server refused the flood
    print(sent, why)


def idle(host, port, connections, rounds, hold):
    hello = PREFACE + frame(SETTINGS, 0, 0, b"")
    for _ in range(rounds):
        socks = []
        for _ in range(connections):
            try:
                s = socket.create_connection((host, port), timeout=5)
                s.sendall(hello)
                socks.append(s)
            except OSError:
                break
        time.sleep(hold)
        closed = 0
        for s in socks:
            s.setblocking(False)
            try:
                # Drain what the server sent (its SETTINGS, a GOAWAY); an
                # empty read means it closed the connection.
                while True:
                    if not s.recv(65536):
                        closed += 1
                        break
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
            s.close()
        print(len(socks), closed, flush=True)


def main(argv):
    try:
        if argv[1] == "continuation" and len(argv) in (5, 6):
            seconds = float(argv[5]) if len(argv) == 6 else 60
            continuation(argv[2], int(argv[3]), int(argv[4]), seconds)
            return 0
        if argv[1] == "idle" and len(argv) == 7:
            idle(argv[2], int(argv[3]), int(argv[4]), int(argv[5]), float(argv[6]))
            return 0
    except (IndexError, ValueError):
        pass
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
