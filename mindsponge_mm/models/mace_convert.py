"""mace-torch weights -> :class:`~mindsponge_mm.models.mace.MACE` (the converter core).

:func:`model_from_mace_state_dict` takes a ``ScaleShiftMACE`` (or ``MACE``) state dict as numpy
arrays (``{name: model.state_dict()[name].numpy()}``) and the model's constructor arguments as JSON
values, and returns our model with the same function. Reading a mace-torch ``.model`` file (a pickle)
is the caller's business; nothing here imports torch.

Hyperparameters (mace-torch's constructor names; JSON types)::

    {
      "model": "ScaleShiftMACE",            # or "MACE" (scale 1, shift 0); optional
      "r_max": 6.0,                          # Å
      "num_bessel": 10,
      "num_polynomial_cutoff": 5,
      "max_ell": 3,
      "hidden_irreps": "128x0e+128x1o",      # C x 0e + C x 1o (+ C x 2e ...), natural parities, equal C
      "MLP_irreps": "16x0e",                 # scalars of the last readout's MLP
      "correlation": 3,                      # or one per interaction
      "num_interactions": 2,
      "interaction_cls_first": "RealAgnosticResidualInteractionBlock",   # or "RealAgnosticInteractionBlock"
      "interaction_cls": "RealAgnosticResidualInteractionBlock",         # optional; only this one
      "radial_MLP": [64, 64, 64],            # optional, mace-torch's default
      "avg_num_neighbors": 61.96,
      "atomic_numbers": [1, 6, 8],           # optional when the state dict has "atomic_numbers"
      "gate": "silu",                        # optional; only SiLU
      "atomic_energies": [...], "atomic_inter_scale": 1.0, "atomic_inter_shift": 0.0   # optional
    }

MACE-MP-0b's additions convert too: ``pair_repulsion: true`` (ZBL; its buffers ``c``, ``a_exp``,
``a_prefactor`` and covalent radii are read from ``pair_repulsion_fn.*``) and ``distance_transform:
"Agnesi"`` (``q``, ``p``, ``a`` and covalent radii from ``radial_embedding.distance_transform.*``);
``"None"`` and ``false`` are the defaults. Also accepted when they hold mace-torch's defaults:
``radial_type: "bessel"``, ``heads: ["Default"]`` (one head), ``num_elements`` (must match). E0s, scale
and shift are read from the state dict (``atomic_energies_fn.atomic_energies``,
``scale_shift.scale``/``shift``) and fall back to the JSON.

``elements`` (symbols or numbers, a subset of the model's) keeps only those elements: the weights of
the others are dropped and the normalisations that count elements (the embedding's and the skip
connection's ``1/sqrt(n_elements)``) are folded into the kept weights, so the function is unchanged
for structures made of the kept elements (MACE-MP-0's 89 elements -> 3 for ethanol: a smaller,
faster model). The covalent-radius tables of ZBL and Agnesi keep the kept elements' entries.
"""
from __future__ import annotations

import math

import mindspore as ms
import numpy as np

from ..errors import UserError
from ..so3 import Irreps
from .base import parse_elements
from .mace import MACE

RESIDUAL = "RealAgnosticResidualInteractionBlock"
PLAIN = "RealAgnosticInteractionBlock"
_KNOWN = {"model", "r_max", "num_bessel", "num_polynomial_cutoff", "max_ell", "hidden_irreps", "MLP_irreps",
          "correlation", "num_interactions", "interaction_cls_first", "interaction_cls", "radial_MLP",
          "avg_num_neighbors", "atomic_numbers", "gate", "atomic_energies", "atomic_inter_scale",
          "atomic_inter_shift", "radial_type", "distance_transform", "pair_repulsion", "heads", "num_elements"}
_DEFAULTS = {"radial_type": "bessel", "gate": "silu", "interaction_cls": RESIDUAL, "model": "ScaleShiftMACE"}
ZBL_PREFIX = "pair_repulsion_fn."
AGNESI_PREFIX = "radial_embedding.distance_transform."


def _cls_name(value) -> str:
    """'RealAgnosticResidualInteractionBlock' from a name or a class repr ("<class 'mace....Block'>")."""
    text = str(value).strip().strip("<>").replace("class ", "").strip("'\"")
    return text.rsplit(".", 1)[-1]


def _is_default(key: str, value) -> bool:
    text = str(value).strip().lower()
    if key == "gate":
        return "silu" in text  # a name or a function's repr ("<function silu at ...>")
    if key == "interaction_cls":
        return _cls_name(value) == RESIDUAL
    if key == "model":
        return text in ("scaleshiftmace", "mace")
    return text == str(_DEFAULTS[key]).lower()


def _check_hparams(hp: dict) -> dict:
    unknown = sorted(set(hp) - _KNOWN)
    if unknown:
        raise UserError(f"mace hyperparameter {unknown[0]!r} is not supported by the converter")
    for key, default in _DEFAULTS.items():
        if key in hp and not _is_default(key, hp[key]):
            raise UserError(f"mace hyperparameter {key} = {hp[key]!r}: only {default!r} is supported")
    transform = hp.get("distance_transform")
    if transform is not None and str(transform).strip().lower() not in ("none", "null", "", "agnesi"):
        raise UserError(f"mace hyperparameter distance_transform = {transform!r}: only 'None' or 'Agnesi' is "
                        "supported")
    if str(hp.get("pair_repulsion", False)).strip().lower() not in ("false", "0", "true", "1"):
        raise UserError(f"mace hyperparameter pair_repulsion = {hp['pair_repulsion']!r}: true or false")
    heads = hp.get("heads") or ["Default"]
    if isinstance(heads, str) or len(heads) != 1:
        raise UserError(f"mace heads {heads!r}: one head only (the command line's --head picks one)")
    return hp


def _hidden(text: str) -> tuple[int, int]:
    irreps = Irreps(str(text))
    muls = {e.mul for e in irreps}
    want = [(l, 1 if l % 2 == 0 else -1) for l in range(len(irreps))]
    if len(muls) != 1 or [(e.l, e.p) for e in irreps] != want:
        raise UserError(f"hidden_irreps {text!r}: expected C x 0e + C x 1o + ... with one C and natural parities")
    return muls.pop(), len(irreps) - 1


def _get(state: dict, key: str, shape=None) -> np.ndarray:
    if key not in state:
        raise UserError(f"mace state dict lacks {key!r}; it does not match the hyperparameters")
    value = np.asarray(state[key], dtype=np.float64)
    if shape is not None and value.size != int(np.prod(shape)):
        raise UserError(f"mace weight {key} has {value.size} numbers, expected shape {tuple(shape)}")
    return value if shape is None else value.reshape(shape)


def _assign(param, value: np.ndarray, name: str) -> None:
    if tuple(param.shape) != tuple(value.shape):
        raise UserError(f"mace weight {name}: shape {value.shape}, the model expects {tuple(param.shape)}")
    value = np.ascontiguousarray(value).reshape(value.shape)  # ascontiguousarray makes 0-d arrays 1-d
    param.copy_(ms.Tensor(value.astype(np.float64 if param.dtype == ms.float64 else np.float32)))


def mace_hyperparameters(hparams: dict, elements) -> dict:
    """Our :class:`MACE` hyperparameters (without ``elements``/``dtype``) for mace-torch's ``hparams``."""
    hp = _check_hparams(dict(hparams))
    channels, hidden_l = _hidden(hp["hidden_irreps"])
    mlp = Irreps(str(hp.get("MLP_irreps", "16x0e")))
    if len(mlp) != 1 or (mlp[0].l, mlp[0].p) != (0, 1):
        raise UserError(f"MLP_irreps {hp.get('MLP_irreps')!r}: only scalars (e.g. '16x0e') are supported")
    pair_repulsion = str(hp.get("pair_repulsion", False)).strip().lower() in ("true", "1")
    agnesi = str(hp.get("distance_transform")).strip().lower() == "agnesi"
    first = _cls_name(hp.get("interaction_cls_first", RESIDUAL))
    if first not in (RESIDUAL, PLAIN):
        raise UserError(f"interaction_cls_first {first!r}: only {RESIDUAL} and {PLAIN} are supported")
    extra = {"pair_repulsion": True} if pair_repulsion else {}
    if agnesi:
        extra["distance_transform"] = "agnesi"
    return dict(cutoff=float(hp["r_max"]), n_channels=channels, hidden_l=hidden_l, l_max=int(hp["max_ell"]),
                correlation=hp["correlation"], n_layers=int(hp["num_interactions"]), n_radial=int(hp["num_bessel"]),
                radial_mlp=[int(w) for w in hp.get("radial_MLP") or [64, 64, 64]],
                envelope_p=int(hp["num_polynomial_cutoff"]), avg_num_neighbors=float(hp["avg_num_neighbors"]),
                readout_hidden=mlp[0].mul, first_interaction="residual" if first == RESIDUAL else "plain", **extra)


def model_from_mace_state_dict(state: dict, hparams: dict, elements=None, dtype: str = "float64") -> MACE:
    """Our :class:`MACE` with the weights of a mace-torch ``ScaleShiftMACE`` (see the module docstring).

    Args:
        state: parameter and buffer name -> numpy array (mace-torch's ``state_dict()``).
        hparams: mace-torch's constructor arguments (the JSON schema above).
        elements: keep only these elements (symbols or atomic numbers); default all of the model's.
        dtype: ``"float64"`` or ``"float32"``.

    Raises UserError for an unsupported architecture or weights that do not match it.
    """
    state = dict(state)
    z_model = state.get("atomic_numbers", hparams.get("atomic_numbers"))
    if z_model is None:
        raise UserError("the mace model's atomic numbers are neither in the state dict nor in the hyperparameters")
    z_model = [int(z) for z in np.asarray(z_model).ravel()]
    n_full = len(z_model)
    if "num_elements" in hparams and int(hparams["num_elements"]) != n_full:
        raise UserError(f"num_elements = {hparams['num_elements']} but the model lists {n_full} atomic numbers")
    keep = parse_elements(elements) if elements is not None else sorted(z_model)
    missing = [z for z in keep if z not in z_model]
    if missing:
        raise UserError(f"element Z={missing[0]} is not in this mace model (atomic numbers {z_model})")
    sel = np.array([z_model.index(z) for z in keep])  # our species index -> mace's one-hot column
    ratio = math.sqrt(len(keep) / n_full)  # folds the 1/sqrt(n_elements) normalisations
    hp = mace_hyperparameters(hparams, keep)
    model = MACE(elements=keep, dtype=dtype, **hp)
    c = hp["n_channels"]

    if "radial_embedding.bessel_fn.r_max" in state and abs(float(state["radial_embedding.bessel_fn.r_max"]) - hp["cutoff"]) > 1e-9:
        raise UserError("r_max in the hyperparameters differs from the model's radial basis")
    if "radial_embedding.cutoff_fn.p" in state and int(state["radial_embedding.cutoff_fn.p"]) != hp["envelope_p"]:
        raise UserError("num_polynomial_cutoff in the hyperparameters differs from the model's cutoff function")
    _assign_pair_terms(model, state, hp, keep)
    _assign(model.embedding, _get(state, "node_embedding.linear.weight", (n_full, c))[sel] * ratio, "embedding")
    _assign(model.radial.frequencies, _get(state, "radial_embedding.bessel_fn.bessel_weights"), "bessel_weights")

    for t, layer in enumerate(model.layers):
        pre, prod = f"interactions.{t}.", f"products.{t}."
        _assign(layer.linear_up.weight, _get(state, pre + "linear_up.weight"), pre + "linear_up.weight")
        _assign(layer.linear.weight, _get(state, pre + "linear.weight"), pre + "linear.weight")
        _assign_radial(layer, state, pre)
        _assign_skip(layer.skip_tp, _get(state, pre + "skip_tp.weight"), sel, n_full, ratio, pre + "skip_tp.weight")
        _assign_contraction(layer.symmetric_contraction, state, prod + "symmetric_contractions.", sel)
        _assign(layer.product_linear.weight, _get(state, prod + "linear.weight"), prod + "linear.weight")
    for t, readout in enumerate(model.readouts):
        pre = f"readouts.{t}."
        if hasattr(readout, "linear_1"):
            _assign(readout.linear_1.weight, _get(state, pre + "linear_1.weight"), pre + "linear_1.weight")
            _assign(readout.linear_2.weight, _get(state, pre + "linear_2.weight"), pre + "linear_2.weight")
        else:
            _assign(readout.weight, _get(state, pre + "linear.weight"), pre + "linear.weight")

    e0 = state.get("atomic_energies_fn.atomic_energies", hparams.get("atomic_energies"))
    e0 = np.zeros(n_full) if e0 is None else np.asarray(e0, np.float64).reshape(-1, n_full)[0]
    scale = float(np.ravel(state.get("scale_shift.scale", hparams.get("atomic_inter_scale", 1.0)))[0])
    shift = float(np.ravel(state.get("scale_shift.shift", hparams.get("atomic_inter_shift", 0.0)))[0])
    model.set_energy_offsets({z: float(e0[z_model.index(z)]) for z in keep}, scale=scale, shift=shift)
    return model


def _assign_pair_terms(model: MACE, state: dict, hp: dict, keep) -> None:
    """ZBL's and Agnesi's buffers; their covalent radii (mace-torch: indexed by Z) kept per element."""
    for prefix, on, name in ((ZBL_PREFIX, "pair_repulsion" in hp, "pair_repulsion"),
                             (AGNESI_PREFIX, "distance_transform" in hp, "distance_transform")):
        if not on and any(k.startswith(prefix) for k in state):
            raise UserError(f"the mace state dict has {prefix}* but the hyperparameters do not set {name}")
    cells = []
    if "pair_repulsion" in hp:
        p = int(np.ravel(state.get(ZBL_PREFIX + "p", [hp["envelope_p"]]))[0])
        if p != hp["envelope_p"]:
            raise UserError(f"{ZBL_PREFIX}p = {p}: the ZBL envelope differs from num_polynomial_cutoff")
        cells.append((model.pair_repulsion_fn, ZBL_PREFIX, ("c", "a_exp", "a_prefactor")))
    if "distance_transform" in hp:
        cells.append((model.distance_transform, AGNESI_PREFIX, ("q", "p", "a")))
    for cell, prefix, names in cells:
        for name in names:
            param = getattr(cell, name)
            _assign(param, _get(state, prefix + name, tuple(param.shape)), prefix + name)
        radii = np.ravel(_get(state, prefix + "covalent_radii"))
        if radii.size <= max(keep):
            raise UserError(f"{prefix}covalent_radii has {radii.size} entries, too few for Z = {max(keep)}")
        _assign(cell.covalent_radii, radii[np.asarray(keep)], prefix + "covalent_radii")


def _assign_radial(layer, state: dict, pre: str) -> None:
    """The radial MLP; the last layer's columns reordered from mace-torch's (by output slot) to ours (by path)."""
    mlp, tp = layer.conv_tp_weights, layer.conv_tp
    n = len(mlp.weights)
    for k in range(n):
        w = _get(state, f"{pre}conv_tp_weights.layer{k}.weight")
        if k == n - 1:
            sizes = [e.mul for e in tp.irreps_out]  # mace-torch: one block per output slot, in slot order
            offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
            if w.shape[1] != offsets[-1]:
                raise UserError(f"mace weight {pre}conv_tp_weights.layer{k}.weight has {w.shape[1]} columns, "
                                f"expected {offsets[-1]}")
            w = np.concatenate([w[:, offsets[slot]:offsets[slot + 1]] for _, _, slot, _, _ in tp.instructions], 1)
        _assign(mlp.weights[k], w, f"{pre}conv_tp_weights.layer{k}.weight")


def _assign_skip(skip, weight: np.ndarray, sel, n_full: int, ratio: float, name: str) -> None:
    ins, outs = list(skip.irreps_in), list(skip.irreps_out)
    blocks, pos = [], 0
    for i, j in skip.instructions:
        size = ins[i].mul * n_full * outs[j].mul
        if pos + size > weight.size:
            raise UserError(f"mace weight {name} is too small for {skip.irreps_in} -> {skip.irreps_out}")
        w = weight[pos:pos + size].reshape(ins[i].mul, n_full, outs[j].mul)[:, sel, :] * ratio
        blocks.append(w.reshape(-1))
        pos += size
    if pos != weight.size:
        raise UserError(f"mace weight {name} has {weight.size} numbers, expected {pos}")
    _assign(skip.weight, np.concatenate(blocks), name)


def _assign_contraction(sc, state: dict, pre: str, sel) -> None:
    """Weights per output irrep o and order ν: mace-torch's ``weights_max`` is ν = correlation,
    ``weights.i`` is ν = correlation - 1 - i. Checks mace-torch's U matrices against ours."""
    params = {(o, nu): p for (o, nu, _), p in zip(sc._wkeys, sc.weights)}
    corr = sc.correlation
    for o in range(len(sc.irreps_out)):
        cpre = f"{pre}contractions.{o}."
        for nu in range(1, corr + 1):
            key = cpre + ("weights_max" if nu == corr else f"weights.{corr - 1 - nu}")
            ours_u = sc.U[(o, nu)]
            u_key = f"{cpre}U_matrix_{nu}"
            if u_key in state:
                ref = np.asarray(state[u_key], np.float64).reshape(ours_u.shape if ours_u.shape[-1] else (-1,))
                if ours_u.shape[-1] and np.abs(ref - ours_u).max() > 1e-6 * max(1.0, np.abs(ours_u).max()):
                    raise UserError(f"{u_key}: mace-torch's product basis differs from ours (a cuequivariance "
                                    "'reduced' basis?); convert a model built with use_reduced_cg=False")
            if (o, nu) not in params:
                continue  # no path of this order (mace-torch keeps a zeroed placeholder)
            w = _get(state, key)
            _assign(params[(o, nu)], w[sel], key)
