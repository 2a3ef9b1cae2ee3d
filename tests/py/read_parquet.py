"""Read a Parquet file from stdin with pyarrow (Arrow C++, a reader that is not connect-rs's) and print its
schema as Parquet has it on the first line, its footer's key-value metadata on the second, then each row on a
line of its own, as JSON."""
import io
import json
import sys

import pyarrow.parquet as pq

data = io.BytesIO(sys.stdin.buffer.read())
file = pq.ParquetFile(data)
# The schema as Parquet prints it, without pyarrow's object line and its field ids (none are written).
printed = str(file.schema).replace(" field_id=-1", "").split("\n", 1)[1]
print(json.dumps(printed))
metadata = file.metadata.metadata or {}
print(json.dumps({k.decode(): v.decode() for k, v in metadata.items()}))
for row in file.read().to_pylist():
    print(json.dumps(row, default=str))
