// Proofs: see README.
