#!/usr/bin/env python3
"""Stands in for systemd's notify socket: binds the datagram socket at argv[1]
and writes one line per message to stdout, "<sender pid> <message>", with
" listening=yes|no" after READY=1: whether 127.0.0.1:argv[2] took a
connection at that moment. Ends on a message END=1 (not written), or after
60 s without one."""
import socket
import struct
import sys

path, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.settimeout(60)
print("bound", flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = next(struct.unpack("iII", data)[0] for level, kind, data in anc
               if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS)
    if msg == b"END=1":
        break
    line = "%d %s" % (pid, msg.decode().strip().replace("\n", " "))
    if "READY=1" in msg.decode():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            line += " listening=yes"
        except OSError:
            line += " listening=no"
    print(line, flush=True)
