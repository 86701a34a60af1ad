"""Subtree proofs agree with the chain's own block root, for every block size."""

import hashlib

from modelward.ledger import chain, proofs


def _leaves(n):
    return [hashlib.sha256(str(i).encode()).digest() for i in range(n)]


def test_subtree_roots_rebuild_the_merkle_root_for_every_size():
    for n in list(range(1, 300)) + [1999, 2000, 2001, 4096]:
        leaves = _leaves(n)
        roots = proofs.subtree_roots(leaves)
        assert len(roots) == -(-n // proofs.SUBTREE)
        assert chain.merkle(roots) == chain.merkle(leaves), n


def test_sealed_root_is_the_chain_block_root():
    prev = hashlib.sha256(b"prev").hexdigest()
    for n in (1, 2, 3, 64, 65, 2000):
        leaves = _leaves(n)
        assert proofs.sealed_root(prev, chain.merkle(leaves), n) == chain.block_root(prev, leaves)
    assert proofs.sealed_root(chain.GENESIS, chain.merkle(_leaves(5)), 4) != chain.block_root(
        chain.GENESIS, _leaves(5))
