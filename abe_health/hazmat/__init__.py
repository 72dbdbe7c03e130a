"""HAZARDOUS MATERIALS: the primitives under abe-health's recipes. Use `abe_health` instead.

Everything here can be used wrongly without an error: pairing groups and ABE schemes as raw
KEMs (`pairing`, `schemes`), key and ciphertext records (`records`), and the `.abe` format's
pieces (`envelope`: header writing, key wrapping, the STREAM payload with a caller-chosen data
key). The recipes (`abe_health.encrypt`, `abe_health.decrypt`, the typed keys, the vault) choose
keys, salts and nonces themselves; start there (README "Encrypt a health record").
"""
