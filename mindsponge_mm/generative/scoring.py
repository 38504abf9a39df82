"""Scores of molecules: QED, logP, ECFP4 Tanimoto similarity to a seed, weighted combinations with a
similarity constraint, and a physics score from a trained potential (3D embedding + relaxation).

Every score is "higher is better". Invalid SMILES get ``invalid_score``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import Crippen, QED

from ..errors import UserError
from .metrics import tanimoto


def _mol(smiles: str):
    RDLogger.DisableLog("rdApp.*")
    try:
        return Chem.MolFromSmiles(smiles) if smiles else None
    finally:
        RDLogger.EnableLog("rdApp.*")


def qed(smiles: str) -> float:
    """RDKit QED in [0, 1]; NaN for an invalid SMILES."""
    mol = _mol(smiles)
    return float(QED.qed(mol)) if mol is not None else float("nan")


def logp(smiles: str) -> float:
    """Crippen logP; NaN for an invalid SMILES."""
    mol = _mol(smiles)
    return float(Crippen.MolLogP(mol)) if mol is not None else float("nan")


PROPERTIES = {"qed": qed, "logp": logp}


@dataclass
class Objective:
    """score = Σ weights[k]·property_k [+ physics term], minus penalty · (0.1 + similarity_min − sim(seed))
    when sim(seed) < similarity_min (a step of penalty/10 plus a slope, so that with the default
    penalty 10 every molecule that breaks the constraint scores below every one that keeps it, for
    properties in [0, 1] such as QED).

    ``weights`` keys: ``qed``, ``logp``, ``similarity`` (ECFP4 Tanimoto to ``seed``) and
    ``physics`` (the :class:`PhysicsScore` value, needs ``physics``). An invalid or unscorable
    molecule scores ``invalid_score``.
    """

    weights: dict = field(default_factory=lambda: {"qed": 1.0})
    seed: str | None = None
    similarity_min: float = 0.0
    penalty: float = 10.0
    invalid_score: float = -10.0
    physics: "PhysicsScore | None" = None

    def __post_init__(self):
        known = set(PROPERTIES) | {"similarity", "physics"}
        for key in self.weights:
            if key not in known:
                raise UserError(f"unknown score {key!r}; use {', '.join(sorted(known))}")
        if ("similarity" in self.weights or self.similarity_min > 0) and self.seed is None:
            raise UserError("a similarity score or constraint needs a seed molecule")
        if "physics" in self.weights and self.physics is None:
            raise UserError("the physics score needs a potential; set optimize.physics.potential")

    def details(self, smiles: str) -> dict:
        """All property values of one molecule plus its ``score`` (and ``valid``)."""
        mol = _mol(smiles)
        if mol is None:
            return {"smiles": smiles, "valid": False, "score": self.invalid_score}
        row = {"smiles": smiles, "valid": True, "qed": qed(smiles), "logp": logp(smiles)}
        if self.seed is not None:
            row["similarity"] = tanimoto(smiles, self.seed)
        score = sum(w * row[k] for k, w in self.weights.items() if k != "physics")
        if "physics" in self.weights:
            phys = self.physics(smiles)
            row.update({f"physics_{k}": v for k, v in phys.items() if k != "smiles"})
            if not phys["scorable"]:
                row["score"] = self.invalid_score
                return row
            score += self.weights["physics"] * phys["score"]
        if self.similarity_min > 0 and row["similarity"] < self.similarity_min:
            score -= self.penalty * (0.1 + self.similarity_min - row["similarity"])
        row["score"] = float(score)
        return row

    def __call__(self, smiles: Sequence[str]) -> np.ndarray:
        """Scores [N] of N SMILES."""
        return np.array([self.details(s)["score"] for s in smiles], dtype=float)


def _as_calculator(potential):
    """An ASE calculator for ``potential``: used as is when it is one, else wrapped in interfaces.ase.Calculator."""
    from ase.calculators.calculator import BaseCalculator

    from ..potentials.base import PotentialBase

    if isinstance(potential, BaseCalculator):
        return potential
    if not isinstance(potential, PotentialBase):
        raise UserError(f"{type(potential).__name__} is neither a potential (a PotentialBase) nor an ASE calculator")
    from ..interfaces.ase import Calculator

    return Calculator(potential)


def _known_elements(potential) -> set[int] | None:
    """Atomic numbers ``potential`` covers (a potential, or this package's ASE calculator around one);
    None when it takes any element or is a foreign calculator."""
    from ase.data import atomic_numbers

    from ..interfaces.ase import Calculator
    from ..potentials.base import PotentialBase

    if isinstance(potential, Calculator):
        potential = potential.potential
    if isinstance(potential, PotentialBase) and potential.elements:
        return {atomic_numbers[e] if isinstance(e, str) else int(e) for e in potential.elements}
    return None


class PhysicsScore:
    """Score a molecule with a potential: ETKDG+MMFF embedding, relaxation, strain energy.

    ``potential``: a potential (:class:`~mindsponge_mm.potentials.base.PotentialBase`, e.g. a learned
    :class:`~mindsponge_mm.models.Potential`)
    or an ASE calculator. For each SMILES, ``n_conformers`` conformers are embedded and relaxed
    with ASE FIRE to ``fmax`` eV/Å (at most ``steps`` steps). The result dict has
    ``energy`` (lowest relaxed energy, eV), ``energy_per_atom`` (eV), ``strain`` (eV: relaxed energy
    of the first conformer minus the lowest), ``relaxation_per_atom`` (eV: mean energy drop on
    relaxation per atom, small when the chemistry-derived geometry already suits the potential)
    and ``score`` = −(the ``metric`` value). Elements the potential does not know, or failed
    embeddings, give ``scorable: False`` with a ``reason`` instead of raising.
    """

    METRICS = ("strain", "relaxation_per_atom", "energy_per_atom")

    def __init__(self, potential, n_conformers: int = 3, fmax: float = 0.05, steps: int = 200, seed: int = 0,
                 metric: str = "relaxation_per_atom", elements: Sequence[int] | None = None):
        if metric not in self.METRICS:
            raise UserError(f"physics metric {metric!r} is unknown; use one of {', '.join(self.METRICS)}")
        self.calc = _as_calculator(potential)
        self.elements = set(elements) if elements is not None else _known_elements(potential)
        self.n_conformers, self.fmax, self.steps, self.seed, self.metric = n_conformers, fmax, steps, seed, metric
        self.cache: dict[str, dict] = {}

    def __call__(self, smiles: str) -> dict:
        if smiles not in self.cache:
            self.cache[smiles] = self._score(smiles)
        return self.cache[smiles]

    def _score(self, smiles: str) -> dict:
        from ase.data import chemical_symbols
        from ase.optimize import FIRE

        from ..interfaces.rdkit import smiles_to_atoms

        try:
            confs = smiles_to_atoms(smiles, n_conformers=self.n_conformers, seed=self.seed)
        except UserError as err:
            return {"smiles": smiles, "scorable": False, "reason": str(err)}
        unknown = sorted(set(confs[0].numbers) - self.elements) if self.elements is not None else []
        if unknown:
            names = ", ".join(chemical_symbols[z] for z in unknown)
            return {"smiles": smiles, "scorable": False, "reason": f"the potential has no parameters for {names}"}
        start, end = [], []
        try:
            for atoms in confs:
                atoms.calc = self.calc
                start.append(atoms.get_potential_energy())
                FIRE(atoms, logfile=None).run(fmax=self.fmax, steps=self.steps)
                end.append(atoms.get_potential_energy())
        except (UserError, NotImplementedError, KeyError) as err:
            return {"smiles": smiles, "scorable": False, "reason": f"the potential cannot score it ({err})"}
        n = len(confs[0])
        out = {"smiles": smiles, "scorable": True, "reason": "", "energy": float(min(end)),
               "energy_per_atom": float(min(end)) / n, "strain": float(end[0] - min(end)),
               "relaxation_per_atom": float(np.mean(np.subtract(start, end))) / n}
        if not np.isfinite(out[self.metric]):
            return {"smiles": smiles, "scorable": False, "reason": "the energy is not finite"}
        out["score"] = -out[self.metric]
        return out
