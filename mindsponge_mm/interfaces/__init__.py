"""Bridges to other packages: ``interfaces.ase`` (an ASE calculator) and ``interfaces.rdkit``.

Import the submodule you need (``from mindsponge_mm.interfaces.ase import Calculator``); this
package imports nothing heavy itself.
"""
