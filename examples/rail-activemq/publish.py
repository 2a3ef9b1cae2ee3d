"""Publish Network Rail-style train movement messages to a STOMP topic (what the feed sends), with nothing
but the Python standard library: python3 examples/rail-activemq/publish.py [PORT] [COUNT]"""
import json, socket, sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 61623
count = int(sys.argv[2]) if len(sys.argv) > 2 else 3
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"CONNECT\naccept-version:1.2\nhost:/\n\n\0")
assert s.recv(4096).startswith(b"CONNECTED"), "no STOMP broker on that port"
for i in range(count):
    body = json.dumps([{"header": {"msg_type": "0003", "source_system_id": "TRUST"},
                        "body": {"event_type": "ARRIVAL", "train_id": f"1A{i:02d}", "loc_stanox": "87701",
                                 "variation_status": "LATE", "timetable_variation": str(i + 1)}}])
    s.sendall(f"SEND\ndestination:/topic/TRAIN_MVT_EA_TOC\npersistent:true\n\n{body}\0".encode())
s.sendall(b"SEND\ndestination:/topic/none\nreceipt:done\n\n\0")
while b"RECEIPT" not in s.recv(4096):
    pass
print(f"published {count} movements to /topic/TRAIN_MVT_EA_TOC on 127.0.0.1:{port}")
