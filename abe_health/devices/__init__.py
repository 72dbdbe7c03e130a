"""Small devices (wearables, phones): outsourced decryption and online/offline encryption.

- **Outsourced decryption** (Green-Hohenberger-Waters, USENIX Security 2011) for FAME CP and KP
  and RW15: `blind(user_key)` gives a `TransformationKey` for the cloud and a `RetrievalKey` for
  the device; the cloud runs `transform` (every pairing) and returns a short transformed header;
  the device runs `retrieve`: one GT exponentiation, the key wrap and the payload's AEAD. A wrong
  transformation is detected, never decrypted.
- **Online/offline encryption** (Hohenberger-Waters, PKC 2014, on Rouselakis-Waters RW13):
  `precompute` a pool while charging, then `Pool(...).encrypt(reading, None, policy)` (or
  `Pool(...).reserve(files, rows)` once, then `.encrypt` per reading) with no group operation;
  or precompute encapsulations of one fixed policy. Pool entries are sealed at rest and consumed
  atomically: never used twice, across processes too (`PoolExhausted`).

What the cloud learns, the security argument and the limits are in docs/devices.md; the byte
layouts in docs/formats.md section 11.
"""

from .keyfiles import PoolKey, RetrievalKey, TransformationKey
from .online import Pool, Reservation, precompute
from .outsourcing import blind, header_digest, header_size, retrieve, transform, transform_file
from .pool import PoolInfo

__all__ = ["Pool", "PoolInfo", "PoolKey", "Reservation", "RetrievalKey", "TransformationKey", "blind",
           "header_digest", "header_size", "precompute", "retrieve", "transform", "transform_file"]
