"""The accelerator behind score masks (private): same masks as `..reference`, much faster.

A training step of a score-masked ResNet18 needs the exact top-k of 11M scores; one
``kthvalue`` costs more than the dense step itself. `.engine` keeps all scores in one
flat arena and updates masks incrementally, `.search` tracks each threshold with a narrow
counting band, `.bits` scans bool flags eight at a time. Nothing outside the masking
package should import from here; tests check it against the reference bit for bit.
"""
