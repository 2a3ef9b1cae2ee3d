"""Read an Avro object container file from stdin with fastavro (a reader that is not connect-rs's) and print
its writer schema on the first line, then each record on a line of its own, as JSON."""
import json
import sys

import fastavro

reader = fastavro.reader(sys.stdin.buffer)
print(json.dumps(reader.writer_schema))
for record in reader:
    print(json.dumps(record, default=str))
