"""Fp12 arithmetic that mcl's C API does not offer, on mcl's serialized GT values: the Frobenius
map (for a fast GT membership test) and the torus compression of GT elements to half their size.

mcl's BLS12-381 tower (its multiplication agrees with the formulas here: tests/test_fp12.py):
Fp2 = Fp[i]/(i^2 + 1), Fp6 = Fp2[v]/(v^3 - xi) with xi = 1 + i, Fp12 = Fp6[w]/(w^2 - v). A
serialized Fp12 value is twelve Fp values of 48 little-endian bytes: a0, a1, a2, b0, b1, b2, each
an Fp2 (real part first), for f = (a0 + a1 v + a2 v^2) + (b0 + b1 v + b2 v^2) w.

- **Frobenius.** In the basis 1, w, ..., w^5 (v = w^2) f = a0 + b0 w + a1 w^2 + b1 w^3 + a2 w^4
  + b2 w^5, and f^(p^n) takes each coefficient to its n-fold conjugate times
  w^(k (p^n - 1)) = xi^(k (p^n - 1) / 6), k the coefficient's power of w (p = 1 mod 6).
- **Membership in GT** (after M. Scott, "A note on group membership tests for G1, G2 and GT on
  BLS pairing-friendly curves", ePrint 2021/1130): f is in the order-r subgroup iff f has norm 1
  (f^(p^6) f = 1, f^(p^6) being the conjugate a - b w: the subgroup of order p^6 + 1, which holds
  GT) and f^p = f^u, u the curve's parameter: then the order of f divides gcd(p^6 + 1, p - u),
  which is r for BLS12-381 (computed in tests/test_fp12.py). A conjugation, one Frobenius map and
  one 64-bit power, against a 255-bit power for f^r = 1.
- **Compression** (the torus T2; Rubin and Silverberg, CRYPTO 2003): an element f = a + b w of
  norm 1 (every element of GT) other than 1 and -1 is (c + w) / (c - w) for exactly one c in Fp6,
  c = (1 + a) / b. GT's identity is written as c = 0 (which would stand for -1, of order 2, never
  in GT), so every element of GT has exactly one 288-byte form, and every 288 bytes of canonical
  Fp values decompress to an element of norm 1 (its membership in GT is still tested).
"""

from __future__ import annotations

from functools import cache

#: the BLS12-381 parameter u (negative) and the base field's prime p
U = -0xD201000000010000
P = 0x1A0111EA397FE69A4B1BA7B6434BACD764774B84F38512BF6730D2A0F6B0F6241EABFFFEB153FFFFB9FEFFFFFFFFAAAB
FP = 48
SIZE, COMPRESSED = 12 * FP, 6 * FP

Fp2 = tuple[int, int]
#: an Fp12 value as its twelve Fp coefficients in mcl's serialization order
Coefficients = tuple[int, ...]
#: position (in Fp2 units) of the coefficient of w^k in mcl's order a0 a1 a2 b0 b1 b2
_POWER_OF_W = (0, 2, 4, 1, 3, 5)


def _mul2(a: Fp2, b: Fp2) -> Fp2:
    return ((a[0] * b[0] - a[1] * b[1]) % P, (a[0] * b[1] + a[1] * b[0]) % P)


def _pow2(a: Fp2, exponent: int) -> Fp2:
    result: Fp2 = (1, 0)
    while exponent:
        if exponent & 1:
            result = _mul2(result, a)
        a = _mul2(a, a)
        exponent >>= 1
    return result


@cache
def _gammas(n: int) -> tuple[Fp2, ...]:
    """xi^(k (p^n - 1) / 6) for the coefficient of w^k, in mcl's coefficient order."""
    base = _pow2((1, 1), (P**n - 1) // 6)
    powers = [(1, 0)]
    for _ in range(5):
        powers.append(_mul2(powers[-1], base))
    return tuple(powers[k] for k in _POWER_OF_W)


def parse(data: bytes, count: int = 12) -> Coefficients | None:
    """The `count` coefficients of a serialized Fp12 value (6: a compressed one, an Fp6), or None
    if the length is wrong or a coefficient is not below p."""
    if len(data) != count * FP:
        return None
    values = tuple(int.from_bytes(data[i:i + FP], "little") for i in range(0, count * FP, FP))
    return values if max(values) < P else None


def serialize(values: Coefficients) -> bytes:
    """Inverse of `parse` (mcl's serialization of the same Fp12 value)."""
    return b"".join(x.to_bytes(FP, "little") for x in values)


def frobenius(values: Coefficients, n: int = 1) -> Coefficients:
    """f^(p^n) for n = 1 or 2."""
    out: list[int] = []
    for j, gamma in enumerate(_gammas(n)):
        re, im = values[2 * j], values[2 * j + 1]
        if n % 2:
            im = -im
        out.extend(_mul2((re, im), gamma))
    return tuple(out)


def conjugate(values: Coefficients) -> Coefficients:
    """f^(p^6) = a - b w: the inverse of f when f has norm 1."""
    return values[:6] + tuple((P - x) % P for x in values[6:])


def fp6_parts(values: Coefficients) -> tuple[Coefficients, Coefficients]:
    """(a, b) of f = a + b w, each as six Fp coefficients."""
    return values[:6], values[6:]


def embed(a: Coefficients | bytes, b0: int | Fp2 = 0) -> bytes:
    """The serialized Fp12 value a + b0 w (a in Fp6, as coefficients or their 288 bytes; b0 in
    Fp, or in Fp2 as a pair): the inputs of the torus maps, which mcl multiplies and inverts."""
    re, im = (b0, 0) if isinstance(b0, int) else b0
    head = a if isinstance(a, bytes) else serialize(a)
    return head + (re % P).to_bytes(FP, "little") + (im % P).to_bytes(FP, "little") + _FOUR_ZEROS


_FOUR_ZEROS = bytes(4 * FP)


def torus_frobenius(c: Coefficients) -> tuple[bytes, Fp2]:
    """(c', g) with ((c + w) / (c - w))^p = (c' + g w) / (c' - g w): c' = c^p (the coefficients
    of 1, v = w^2, v^2 = w^4 conjugated and scaled; returned serialized) and g = w^(p-1). Lets
    the membership test of a decompressed value take its Frobenius map without re-reading it."""
    gammas = _gammas(1)
    out: list[int] = []
    for j in range(3):
        out.extend(_mul2((c[2 * j], -c[2 * j + 1]), gammas[j]))
    return serialize(tuple(out)), gammas[3]


def is_zero6(values: Coefficients) -> bool:
    """True for the zero element of Fp6 (six coefficients)."""
    return not any(values)


def plus_one(a: Coefficients) -> Coefficients:
    """1 + a for a in Fp6."""
    return ((a[0] + 1) % P, *a[1:])
