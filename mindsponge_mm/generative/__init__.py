"""MolMIM-style latent generative design of SMILES.

``tokenizer`` (regex SMILES tokens, vocabulary), ``model`` (Perceiver encoder -> latent code ->
Transformer decoder), ``train`` (jitted MIM training), ``sampling`` (encode / decode / sample
around a seed), ``scoring`` (QED, logP, Tanimoto, physics score), ``cmaes`` (CMA-ES in latent
space), ``metrics`` (validity, uniqueness, novelty, reconstruction) and ``job`` (CLI entry points).
Importing this package does not import MindSpore; the submodules that need it do.
"""
