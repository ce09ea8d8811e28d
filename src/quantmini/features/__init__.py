"""The feature library: declared features and sets (:mod:`.library`), Qlib-syntax expressions
(:mod:`.expression`), their evaluation (:mod:`.evaluate`, :mod:`.kernels`) and the silver transforms
of the sets (:mod:`.silver`)."""
