"""gradproof.adapters: the checker applied to other people's code.

``nn`` checks a ``gradproof.nn`` model layer by layer (``gradproof.check_model``);
``torch``, ``jax`` and ``second_order`` check PyTorch and JAX functions (their
libraries are imported only by those modules).
"""
