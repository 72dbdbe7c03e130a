"""PASS-tree encrypted keyword and pattern search (Bezawada et al., ICDCS 2015).

Independent of `abe_health`: it uses symmetric keys only. The index, trapdoors and ranked search
arrive with the search issue; this package is installed now so that the layout is fixed.
"""
