"""HAZARDOUS MATERIALS: use `abe_health.encrypt` / `abe_health.decrypt` instead.

The `.abe` format in three pieces, one job each: `header` (layout and parsing), `wrap` (the data
key under the KEM's GT key), `stream` (the chunked AEAD payload). Specified in docs/formats.md.
"""

from .header import CHUNK, MAGIC, MAX_HEADER, V1_MESSAGE, VERSION, Header, read_header, write_header
from .stream import Progress, open_chunks, open_payload, payload_aad, reencapsulate, seal_payload, seal_stream
from .wrap import WRAP, unwrap_dek, wrap_dek

__all__ = ["CHUNK", "MAGIC", "MAX_HEADER", "V1_MESSAGE", "VERSION", "WRAP", "Header", "Progress",
           "open_chunks", "open_payload", "payload_aad", "read_header", "reencapsulate", "seal_payload",
           "seal_stream", "unwrap_dek", "wrap_dek", "write_header"]
