"""Scores of molecules: QED, logP, penalized logP, ECFP4 Tanimoto similarity to a seed, weighted
combinations with a similarity constraint, and a physics score (3D embedding + relaxation).

Every score is "higher is better". Invalid SMILES get ``invalid_score``.

The physics scorer for drug-like molecules is GFN2-xTB through tblite (``pip install tblite``, or the
package's ``reference`` extra), built by :func:`strain_score` or ``PhysicsScore("xtb",
metric="relaxation_per_heavy_atom")``: RDKit embeds conformers with ETKDG v3 (fixed seed) and
relaxes them with MMFF94, GFN2-xTB relaxes each further with L-BFGS, and the score is minus the
energy that the xTB relaxation releases, per heavy atom (eV). It is about 0 for a molecule whose
force-field geometry is already an xTB minimum, and large for strained rings, clashing groups and
bonding the force field describes badly. Any learned :class:`~mindsponge_mm.models.Potential`,
or any ASE calculator, can take xTB's place (:func:`physics_calculator` resolves names; EMT is only
for tests that need a cheap calculator: it knows H, C, N, O and is meaningless for chemistry).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import Crippen, QED

from ..errors import UserError
from .metrics import penalized_logp, tanimoto


def _mol(smiles: str):
    RDLogger.DisableLog("rdApp.*")
    try:
        return Chem.MolFromSmiles(smiles) if smiles else None
    finally:
        RDLogger.EnableLog("rdApp.*")


def _as_mol(smiles_or_mol):
    return _mol(smiles_or_mol) if isinstance(smiles_or_mol, str) else smiles_or_mol


def qed(smiles_or_mol) -> float:
    """RDKit QED in [0, 1] of a SMILES or RDKit Mol; NaN for an invalid SMILES."""
    mol = _as_mol(smiles_or_mol)
    return float(QED.qed(mol)) if mol is not None else float("nan")


def logp(smiles_or_mol) -> float:
    """Crippen logP of a SMILES or RDKit Mol; NaN for an invalid SMILES."""
    mol = _as_mol(smiles_or_mol)
    return float(Crippen.MolLogP(mol)) if mol is not None else float("nan")


def plogp(smiles_or_mol) -> float:
    """Penalized logP (standardised logP − SA − large-ring penalty, see :mod:`.metrics`) of a SMILES
    or RDKit Mol; NaN when invalid."""
    mol = _as_mol(smiles_or_mol)
    return penalized_logp(mol) if mol is not None else float("nan")


PROPERTIES = {"qed": qed, "logp": logp, "plogp": plogp}


@dataclass
class Objective:
    """score = Σ weights[k]·property_k [+ physics term], minus penalty · (0.1 + similarity_min − sim(seed))
    when sim(seed) < similarity_min (a step of penalty/10 plus a slope, so that with the default
    penalty 10 every molecule that breaks the constraint scores below every one that keeps it, for
    properties in [0, 1] such as QED).

    ``weights`` keys: ``qed``, ``logp``, ``plogp`` (penalized logP), ``similarity`` (ECFP4 Tanimoto
    to ``seed``) and ``physics`` (the :class:`PhysicsScore` value, needs ``physics``). An invalid or unscorable
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
        if not isinstance(self.weights, dict) or not self.weights:
            raise UserError(f"objective weights {self.weights!r}: give a mapping such as {{'qed': 1.0}}")
        for key in self.weights:
            if key not in known:
                raise UserError(f"unknown objective {key!r}; use one of {', '.join(sorted(known))}")
        if not 0.0 <= float(self.similarity_min) <= 1.0:
            raise UserError(f"similarity bound {self.similarity_min} is outside [0, 1]; ECFP4 Tanimoto lies in [0, 1]")
        if ("similarity" in self.weights or self.similarity_min > 0) and self.seed is None:
            raise UserError("a similarity score or constraint needs a seed molecule")
        if "physics" in self.weights and self.physics is None:
            raise UserError("the physics score needs a potential; set optimize.physics.potential (e.g. xtb)")

    def details(self, smiles: str, report: bool = True) -> dict:
        """The property values of one molecule plus its ``score`` (and ``valid``); ``report``: also
        QED and logP when the score does not need them."""
        mol = _mol(smiles)
        if mol is None:
            return {"smiles": smiles, "valid": False, "score": self.invalid_score}
        row = {"smiles": smiles, "valid": True}
        for name, prop in PROPERTIES.items():
            if name in self.weights or (report and name != "plogp"):
                row[name] = prop(mol)
        if self.seed is not None:
            row["similarity"] = tanimoto(mol, self.seed)
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
        return np.array([self.details(s, report=False)["score"] for s in smiles], dtype=float)


XTB_ELEMENTS = frozenset(range(1, 87))  # GFN2-xTB has parameters for H to Rn
PHYSICS_NAMES = ("xtb", "gfn2-xtb", "gfn1-xtb", "emt")


def physics_calculator(name: str):
    """The ASE calculator behind a physics-potential name.

    ``xtb`` / ``gfn2-xtb``: tblite's GFN2-xTB (the documented scorer for drug-like molecules);
    ``gfn1-xtb``: tblite's GFN1-xTB; ``emt``: ASE's EMT (H, C, N, O only; a cheap stand-in for
    tests). Any other string is the path of a potential checkpoint (``models.load_potential``).
    A missing tblite is a one-line :class:`UserError` naming the fix.
    """
    key = str(name).strip().lower()
    if key in ("xtb", "gfn2-xtb", "gfn1-xtb"):
        try:
            from tblite.ase import TBLite
        except ImportError:
            raise UserError(f"physics potential {name!r} needs the tblite package; pip install tblite "
                            f"(or pip install 'mindsponge_mm[reference]')") from None
        return TBLite(method="GFN1-xTB" if key == "gfn1-xtb" else "GFN2-xTB", verbosity=0)
    if key == "emt":
        from ase.calculators.emt import EMT

        return EMT()
    from ..models import load_potential

    return load_potential(name)


def _as_calculator(potential):
    """An ASE calculator for ``potential``: used as is when it is one, a name is resolved by
    :func:`physics_calculator`, a potential is wrapped in interfaces.ase.Calculator."""
    from ase.calculators.calculator import BaseCalculator

    from ..potentials.base import PotentialBase

    if isinstance(potential, (str, os.PathLike)):
        potential = physics_calculator(os.fspath(potential))
    if isinstance(potential, BaseCalculator):
        return potential
    if not isinstance(potential, PotentialBase):
        raise UserError(f"{type(potential).__name__} is neither a potential (a PotentialBase) nor an ASE calculator")
    from ..interfaces.ase import Calculator

    return Calculator(potential)


def _known_elements(calc) -> set[int] | None:
    """Atomic numbers the calculator ``calc`` covers (xTB, EMT, or this package's calculator around a
    potential); None when it takes any element or is a foreign calculator."""
    from ase.data import atomic_numbers

    from ..interfaces.ase import Calculator
    from ..potentials.base import PotentialBase

    name = type(calc).__name__
    if name == "TBLite":
        return set(XTB_ELEMENTS)
    if isinstance(calc, Calculator):
        calc = calc.potential
    if isinstance(calc, PotentialBase) and calc.elements:
        return {atomic_numbers[e] if isinstance(e, str) else int(e) for e in calc.elements}
    return None


def relax(atoms, calc, fmax: float = 0.05, steps: int = 200, optimizer: str = "fire") -> tuple[float, float]:
    """Relax ``atoms`` in place with ``calc``; returns (energy before, lowest energy reached) in eV.

    ``optimizer``: ``fire`` or ``lbfgs`` (ASE). The lowest energy seen along the path is returned,
    so the energy released, before − after, is never negative.
    """
    from ase.optimize import FIRE, LBFGS

    opt_cls = {"fire": FIRE, "lbfgs": LBFGS}.get(optimizer)
    if opt_cls is None:
        raise UserError(f"optimizer {optimizer!r} is unknown; use fire or lbfgs")
    atoms.calc = calc
    start = float(atoms.get_potential_energy())
    lowest = [start]
    opt = opt_cls(atoms, logfile=None)
    opt.attach(lambda: lowest.append(float(atoms.get_potential_energy())))
    opt.run(fmax=fmax, steps=steps)
    lowest.append(float(atoms.get_potential_energy()))
    return start, min(lowest)


class PhysicsScore:
    """Score a molecule with a potential: ETKDG+MMFF embedding, relaxation, strain energy.

    ``potential``: a potential (:class:`~mindsponge_mm.potentials.base.PotentialBase`, e.g. a learned
    :class:`~mindsponge_mm.models.Potential`), an ASE calculator, or a name that
    :func:`physics_calculator` resolves (``"xtb"`` for GFN2-xTB, the choice for drug-like molecules).
    For each SMILES, ``n_conformers`` conformers are embedded (ETKDG v3 with random seed ``seed``,
    then MMFF94, or UFF where MMFF lacks parameters) and relaxed with ``optimizer`` (ASE FIRE or
    L-BFGS) to ``fmax`` eV/Å (at most ``steps`` steps). The result dict has
    ``energy`` (lowest relaxed energy, eV), ``energy_per_atom`` (eV), ``strain`` (eV: relaxed energy
    of the first conformer minus the lowest), ``relaxation_per_atom`` (eV: mean energy drop on
    relaxation per atom, small when the chemistry-derived geometry already suits the potential),
    ``relaxation_per_heavy_atom`` (eV: the same drop per non-hydrogen atom; the strain score of
    :func:`strain_score`), ``heavy_atoms`` and ``score`` = −(the ``metric`` value). Elements the
    potential does not know, failed embeddings or calculations give ``scorable: False`` with a
    ``reason`` instead of raising. A charged molecule passes its total charge to the calculator as
    initial charges (tblite reads the total).
    """

    METRICS = ("strain", "relaxation_per_atom", "relaxation_per_heavy_atom", "energy_per_atom")

    def __init__(self, potential, n_conformers: int = 3, fmax: float = 0.05, steps: int = 200, seed: int = 0,
                 metric: str = "relaxation_per_atom", elements: Sequence[int] | None = None,
                 optimizer: str = "fire"):
        if metric not in self.METRICS:
            raise UserError(f"physics metric {metric!r} is unknown; use one of {', '.join(self.METRICS)}")
        if optimizer not in ("fire", "lbfgs"):
            raise UserError(f"optimizer {optimizer!r} is unknown; use fire or lbfgs")
        self.calc = _as_calculator(potential)
        self.elements = set(elements) if elements is not None else _known_elements(self.calc)
        self.n_conformers, self.fmax, self.steps, self.seed, self.metric = n_conformers, fmax, steps, seed, metric
        self.optimizer = optimizer
        self.cache: dict[str, dict] = {}

    def __call__(self, smiles: str) -> dict:
        if smiles not in self.cache:
            self.cache[smiles] = self._score(smiles)
        return self.cache[smiles]

    def _score(self, smiles: str) -> dict:
        from ase.data import chemical_symbols

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
                charge = int(atoms.info.get("charge", 0))
                if charge:
                    charges = np.zeros(len(atoms))
                    charges[0] = charge
                    atoms.set_initial_charges(charges)
                e0, e1 = relax(atoms, self.calc, self.fmax, self.steps, self.optimizer)
                start.append(e0)
                end.append(e1)
        except (UserError, NotImplementedError, KeyError, RuntimeError, ValueError) as err:
            reason = " ".join(str(err).split())[:200]
            return {"smiles": smiles, "scorable": False, "reason": f"the potential cannot score it ({reason})"}
        n = len(confs[0])
        heavy = int(np.count_nonzero(confs[0].numbers > 1))
        drop = float(np.mean(np.subtract(start, end)))
        out = {"smiles": smiles, "scorable": True, "reason": "", "energy": float(min(end)),
               "energy_per_atom": float(min(end)) / n, "strain": float(end[0] - min(end)),
               "relaxation_per_atom": drop / n, "relaxation_per_heavy_atom": drop / max(heavy, 1),
               "heavy_atoms": heavy}
        if not np.isfinite(out[self.metric]):
            return {"smiles": smiles, "scorable": False, "reason": "the energy is not finite"}
        out["score"] = -out[self.metric]
        return out


def strain_score(potential="xtb", n_conformers: int = 1, fmax: float = 0.05, steps: int = 200,
                 seed: int = 0) -> PhysicsScore:
    """The documented physics scorer for drug-like molecules: GFN2-xTB relaxation energy per heavy
    atom (eV) of ETKDG+MMFF conformers, relaxed with L-BFGS; score = −that energy.

    ``potential`` may be any other name, potential or ASE calculator (see :class:`PhysicsScore`).
    """
    return PhysicsScore(potential, n_conformers=n_conformers, fmax=fmax, steps=steps, seed=seed,
                        metric="relaxation_per_heavy_atom", optimizer="lbfgs")
