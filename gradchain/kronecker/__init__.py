"""Kronecker-factored preconditioner statistics and the matrix functions of them.

A leaf ``G`` with axes ``1..k`` gets one factor per preconditioned axis, ``H_i = Σ_t G_(i) G_(i)ᴴ``
(for a matrix: ``L = Σ G Gᵀ`` and ``R = Σ Gᵀ G``); Shampoo multiplies the gradient along each
axis by an inverse root of its factor, SOAP rotates it into the factors' eigenbases and runs Adam
there (``gradchain/preconditioners/shampoo.py``, ``soap.py``). ``factors.py`` says which axes get
a factor and accumulates them; ``roots.py`` has the inverse p-th root (by ``eigh``, with a
derivative that stays finite at repeated eigenvalues); ``eigenbasis.py`` the eigenbasis, its
refresh by power iteration and QR, and the products along axes.
"""
