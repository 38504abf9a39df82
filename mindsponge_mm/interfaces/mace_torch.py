"""mace-torch models -> our checkpoints (``mindsponge-mm convert mace``).

Two inputs:

* a mace-torch model file (``.model``, ``.pt``, ``.pth``: what ``mace_run_train`` writes, MACE-MP-0,
  MACE-OFF23). It is a pickle: reading it runs code from the file, so convert only files you trust.
  It needs torch and mace-torch (``pip install -e ".[mace]"``). The hyperparameters are read from the
  module's attributes, the weights from its state dict.
* a state dict (``.npz`` or ``.safetensors``; names as in ``model.state_dict()``, optionally under a
  ``state/`` prefix as in ``tests/fixtures/mace``) with ``--hparams JSON``: mace-torch's constructor
  arguments in the schema of :mod:`mindsponge_mm.models.mace_convert`. No pickle, no torch. The JSON
  may also be mace-torch's own ``extract_config_mace_model`` output after ``convert_to_json_format``:
  its extra keys are accepted when they hold mace-torch's defaults.

Multi-head models (fine-tuned models carry ``pt_head`` and ``Default``): ``head`` picks one head's
readout, E0s, scale and shift. Without it, the head named ``default`` (any case) is used, as
mace-torch's ``MACECalculator`` does, and a line says so; a model without such a head needs ``head``.
For a multi-head state dict, ``MLP_irreps`` in the JSON is per head (as mace-torch's constructor takes
it) and ``atomic_energies``/``atomic_inter_scale``/``atomic_inter_shift`` may be per head.

``elements`` keeps a subset of the model's elements: the same energies for structures made of them,
a smaller and faster model (MACE-MP-0's 89 elements -> the 4 of a protein).

MACE-MP-0b-style models convert: ZBL pair repulsion (``pair_repulsion=True``) and the Agnesi
distance transform (``distance_transform="Agnesi"``), with their buffers. Pieces our ``mace`` does not
have are refused with one line naming them: other distance transforms (Soft), Gaussian/Chebyshev
radial bases, density normalisation, the non-linear and attention interaction blocks, bias readouts,
joint embeddings, cuequivariance layers, and models other than ``ScaleShiftMACE``/``MACE``.
"""
from __future__ import annotations

import ast
import contextlib
import importlib.util
import io
import json
import math
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import UserError

PICKLE_SUFFIXES = (".model", ".pt", ".pth")
STATE_SUFFIXES = (".npz", ".safetensors")
RESIDUAL = "RealAgnosticResidualInteractionBlock"
PLAIN = "RealAgnosticInteractionBlock"

# top-level modules of a ScaleShiftMACE that the converter maps (or that hold constants only)
_KNOWN_MODULES = {"atomic_numbers", "r_max", "num_interactions", "node_embedding", "radial_embedding",
                  "spherical_harmonics", "atomic_energies_fn", "interactions", "products", "readouts",
                  "scale_shift", "pair_repulsion_fn"}
# state-dict names of pieces we do not have -> what to call them
_PIECES = [
    (r"^radial_embedding\.distance_transform\.(?!(q|p|a|covalent_radii)$)",
     "a distance transform other than Agnesi (Soft, distance_transform)"),
    (r"^interactions\.\d+\.density_fn\.", "density normalisation (a RealAgnosticDensity* interaction block)"),
    (r"^interactions\.\d+\.(equivariant_nonlin|linear_res|source_embedding)\.",
     "a non-linear interaction block (RealAgnosticResidualNonLinearInteractionBlock)"),
    (r"^interactions\.\d+\.(linear_down|skip_linear)\.", "an attention interaction block (RealAgnosticAttResidualInteractionBlock)"),
    (r"^interactions\.\d+\.conv_tp_weights\.net\.", "a radial MLP with layer normalisation (RadialMLP)"),
    (r"^readouts\.\d+\.linear_mid\.", "a bias readout (NonLinearBiasReadoutBlock)"),
    (r"^(joint_embedding|embedding_readout)\.", "a joint embedding of extra inputs (embedding_specs)"),
    (r"^les", "the long-range LES block (MACELES)"),
]
# extra keys of mace-torch's extract_config_mace_model: accepted at these (default) values only
_MACE_DEFAULTS = {
    "edge_irreps": ("None", "edge irreps (edge_irreps)"),
    "use_so3": ("False", "SO(3)-only features (use_so3)"),
    "use_edge_irreps_first": ("False", "edge irreps in the first block (use_edge_irreps_first)"),
    "use_agnostic_product": ("False", "the element-agnostic product (use_agnostic_product)"),
    "use_last_readout_only": ("False", "a readout of the last layer only (use_last_readout_only)"),
    "use_embedding_readout": ("False", "an embedding readout (use_embedding_readout)"),
    "embedding_specs": ("None", "a joint embedding of extra inputs (embedding_specs)"),
    "cueq_config": ("None", "cuequivariance layers (cueq_config); convert an e3nn model"),
    "oeq_config": ("None", "openequivariance layers (oeq_config)"),
    "apply_cutoff": ("True", "a radial basis without the cutoff function (apply_cutoff=False)"),
    "keep_last_layer_irreps": ("False", "equivariant features in the last layer (keep_last_layer_irreps)"),
    "lammps_mliap": (None, None),  # any value: only changes how LAMMPS calls the model
    "use_reduced_cg": (None, None),  # any value: the converter compares the product basis itself
    "readout_cls": (("NonLinearReadoutBlock", "LinearReadoutBlock"),  # the latter: one interaction
                    "a readout other than NonLinearReadoutBlock (readout_cls)"),
}
_JSON_PIECES = {  # key -> (accepted values as lower-case text, the piece)
    "distance_transform": (("none", "null", "", "agnesi"), "a distance transform (distance_transform={value})"),
    "radial_type": (("bessel",), "the {value} radial basis (radial_type; only bessel)"),
}
_LITERAL_KEYS = ("r_max", "num_bessel", "num_polynomial_cutoff", "max_ell", "num_interactions", "num_elements",
                 "avg_num_neighbors", "correlation", "radial_MLP", "atomic_numbers", "atomic_energies",
                 "atomic_inter_scale", "atomic_inter_shift", "heads")
_INTERACTIONS = {
    "RealAgnosticDensityInteractionBlock": "density normalisation (RealAgnosticDensityInteractionBlock)",
    "RealAgnosticDensityResidualInteractionBlock": "density normalisation (RealAgnosticDensityResidualInteractionBlock)",
    "RealAgnosticResidualNonLinearInteractionBlock":
        "a non-linear interaction block (RealAgnosticResidualNonLinearInteractionBlock)",
    "RealAgnosticAttResidualInteractionBlock": "an attention interaction block (RealAgnosticAttResidualInteractionBlock)",
}


def _unsupported(source, piece: str) -> UserError:
    return UserError(f"{source}: this mace model uses {piece}, which mindsponge_mm's mace does not have; "
                     "it cannot be converted")


def _class_name(value) -> str:
    """'RealAgnosticResidualInteractionBlock' from a class, a name, or a class repr."""
    if isinstance(value, type):
        return value.__name__
    text = str(value).strip().strip("<>").replace("class ", "").strip("'\"")
    return text.rsplit(".", 1)[-1]


# ---------------------------------------------------------------------------------------- reading
def read_mace_model_file(path: Path) -> tuple[dict, dict]:
    """(state dict as numpy arrays, hyperparameters) of a pickled mace-torch model; needs torch + mace."""
    missing = [m for m in ("torch", "mace") if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"{path}: reading a mace-torch model file needs torch and mace-torch ({missing[0]} is not "
                        "installed): pip install -e '.[mace]', or convert a state dict (.npz) with --hparams")
    print(f"unpickling {path}: reading a mace-torch model file runs code from it; convert only files you trust",
          flush=True)
    # mace prints a notice about cuequivariance and e3nn warns about torch.load at import: not our user's business
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            import mace  # noqa: F401  (the pickle names mace's classes; importing mace also lets e3nn load)
            import torch
        except ImportError as err:
            raise UserError(f"{path}: torch or mace-torch does not import ({err}); reinstall with "
                            "pip install -e '.[mace]'") from None
        try:
            module = torch.load(str(path), weights_only=False, map_location="cpu")
        except Exception as err:  # noqa: BLE001  (any failure to unpickle means: not a model file we can read)
            reason = " ".join(str(err).split())[:160] or type(err).__name__
            raise UserError(f"{path}: not a mace-torch model file ({type(err).__name__}: {reason})") from None
    if not isinstance(module, torch.nn.Module):
        if isinstance(module, dict) and any(str(k).startswith("node_embedding.") for k in module):
            raise UserError(f"{path}: holds a state dict, not a model; save it as .npz (numpy arrays) and "
                            "give --hparams JSON")
        raise UserError(f"{path}: holds a {type(module).__name__}, not a mace-torch model")
    state = {}
    for key, value in module.state_dict().items():
        array = value.detach().cpu().numpy()
        state[key] = array.astype(np.float64) if np.issubdtype(array.dtype, np.floating) else array.copy()
    hparams = hparams_from_module(module, path, state)
    return state, hparams


def hparams_from_module(module, source, state: dict) -> dict:
    """mace-torch's constructor arguments (the JSON schema of ``mace_convert``) from a model object."""
    name = type(module).__name__
    if name not in ("ScaleShiftMACE", "MACE"):
        if name == "MACELES":
            raise _unsupported(source, "the long-range LES block (MACELES)")
        raise UserError(f"{source}: holds a {name}, not a mace-torch ScaleShiftMACE or MACE energy model")
    for block in (type(b).__name__ for b in module.interactions):  # named before the parts they are made of
        if block in _INTERACTIONS:
            raise _unsupported(source, _INTERACTIONS[block])
    _check_state_pieces(state, source)
    radial = module.radial_embedding
    basis = type(radial.bessel_fn).__name__
    if basis != "BesselBasis":
        raise _unsupported(source, f"the {basis} radial basis (radial_type; only bessel)")
    transform = getattr(radial, "distance_transform", None)
    if transform is not None and type(transform).__name__ != "AgnesiTransform":
        raise _unsupported(source, f"a distance transform ({type(transform).__name__})")
    repulsion = getattr(module, "pair_repulsion_fn", None)
    if repulsion is not None and type(repulsion).__name__ != "ZBLBasis":
        raise _unsupported(source, f"the pair repulsion {type(repulsion).__name__} (only ZBLBasis)")
    for attr, (default, piece) in _MACE_DEFAULTS.items():
        if piece is not None and hasattr(module, attr) and attr not in ("readout_cls", "cueq_config", "oeq_config"):
            value = getattr(module, attr)
            if str(value) != default:
                raise _unsupported(source, piece)
    if hasattr(module, "embedding_readout") or hasattr(module, "joint_embedding"):
        raise _unsupported(source, "a joint embedding of extra inputs (embedding_specs)")
    if getattr(radial, "apply_cutoff", True) is False:
        raise _unsupported(source, "a radial basis without the cutoff function (apply_cutoff=False)")

    blocks = [type(b).__name__ for b in module.interactions]
    for k, block in enumerate(blocks):
        if block not in ((RESIDUAL, PLAIN) if k == 0 else (RESIDUAL,)):
            raise _unsupported(source, f"the interaction block {block} (layer {k})")
    n_layers = int(module.num_interactions.item())
    readouts = list(module.readouts)
    if len(readouts) != n_layers:
        raise _unsupported(source, "a readout of the last layer only (use_last_readout_only)")
    for k, readout in enumerate(readouts):
        kind = type(readout).__name__
        want = "NonLinearReadoutBlock" if (k == n_layers - 1 and n_layers > 1) else "LinearReadoutBlock"
        if kind != want:
            raise _unsupported(source, f"a {kind} readout (layer {k}; expected {want})")
    if n_layers > 1 and _irreps_terms(module.products[-1].linear.irreps_out) - {"0e"}:
        raise _unsupported(source, "equivariant features in the last layer (keep_last_layer_irreps)")
    heads = [str(h) for h in (getattr(module, "heads", None) or ["Default"])]
    hp = {"model": name, "heads": heads, "pair_repulsion": repulsion is not None,
          "distance_transform": "Agnesi" if transform is not None else "None"}

    mlp = "16x0e"
    gate = "silu"
    last = readouts[-1]
    if hasattr(last, "hidden_irreps"):
        total = _scalar_count(last.hidden_irreps)
        mlp = f"{max(1, total // len(heads))}x0e"
        acts = getattr(last.non_linearity, "acts", None) or []
        f = getattr(acts[0], "f", None) if acts else None
        gate = getattr(f, "__name__", str(f))
        if "silu" not in gate.lower():
            raise _unsupported(source, f"the readout gate {gate} (only SiLU)")
    correlation = []
    for k, product in enumerate(module.products):
        contractions = getattr(getattr(product, "symmetric_contractions", None), "contractions", None)
        if contractions is None:
            raise _unsupported(source, "cuequivariance product layers (convert an e3nn model: mace's cueq_to_e3nn)")
        correlation.append(len(contractions[0].weights) + 1)
    radial_mlp = []
    k = 0
    while f"interactions.0.conv_tp_weights.layer{k + 1}.weight" in state:
        radial_mlp.append(int(np.shape(state[f"interactions.0.conv_tp_weights.layer{k}.weight"])[-1]))
        k += 1
    hp.update(
        r_max=float(module.r_max.item()), num_bessel=int(np.size(state["radial_embedding.bessel_fn.bessel_weights"])),
        num_polynomial_cutoff=int(radial.cutoff_fn.p.item()), max_ell=int(module.spherical_harmonics._lmax),
        hidden_irreps=str(module.products[0].linear.irreps_out), MLP_irreps=mlp,
        correlation=correlation[0] if len(set(correlation)) == 1 else correlation, num_interactions=n_layers,
        interaction_cls_first=blocks[0], interaction_cls=blocks[-1] if n_layers > 1 else RESIDUAL,
        radial_MLP=radial_mlp, avg_num_neighbors=float(module.interactions[0].avg_num_neighbors),
        atomic_numbers=[int(z) for z in np.ravel(state["atomic_numbers"])], gate=gate,
        num_elements=int(np.size(state["atomic_numbers"])))
    return hp


def read_state_dict(path: Path) -> dict:
    """name -> numpy array of a state dict in .npz or .safetensors (no pickle); ``state/`` prefixes dropped."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(str(path), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        else:
            from safetensors.numpy import load_file

            arrays = load_file(str(path))
    except Exception as err:  # noqa: BLE001  (zip, format and object-array errors alike)
        reason = " ".join(str(err).split())[:160] or type(err).__name__
        raise UserError(f"{path}: not a readable state dict ({reason})") from None
    if any(k.startswith("state/") for k in arrays):
        arrays = {k[len("state/"):]: v for k, v in arrays.items() if k.startswith("state/")}
    if "node_embedding.linear.weight" not in arrays:
        raise UserError(f"{path}: not a mace-torch state dict (no node_embedding.linear.weight)")
    return {k: v.astype(np.float64) if np.issubdtype(v.dtype, np.floating) else v for k, v in arrays.items()}


def read_hparams(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: hyperparameter file not found; --hparams takes a JSON file")
    try:
        hp = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(f"{path}: not valid JSON ({err}); --hparams takes mace-torch's constructor arguments "
                        "as JSON") from None
    if not isinstance(hp, dict):
        raise UserError(f"{path}: expected a JSON object of mace-torch's constructor arguments")
    return hp


def _check_state_pieces(state: dict, source) -> None:
    for pattern, piece in _PIECES:  # in this order: the block before the parts it is made of
        if any(re.match(pattern, key) for key in state):
            raise _unsupported(source, piece)
    unknown = sorted({k.split(".", 1)[0] for k in state} - _KNOWN_MODULES)
    if unknown:
        raise _unsupported(source, f"the module {unknown[0]!r}, unknown to the converter")


def _clean_json_hparams(hp: dict, source) -> dict:
    """The JSON without mace-torch's extra default-valued keys; a non-default one is refused by name."""
    hp = dict(hp)
    for key, (accepted, piece) in _JSON_PIECES.items():
        if key in hp and str(hp[key]).lower() not in accepted and hp[key] is not None:
            raise _unsupported(source, piece.format(value=hp[key]))
    for key, (default, piece) in _MACE_DEFAULTS.items():
        if key not in hp:
            continue
        value = hp.pop(key)
        if default is None:
            continue
        shown = _class_name(value) if key == "readout_cls" else str(value)
        accepted = default if isinstance(default, tuple) else (default,)
        if shown not in accepted and not (default == "None" and value in (None, "null", "")):
            raise _unsupported(source, piece)
    for key in ("interaction_cls_first", "interaction_cls"):
        if key in hp:
            block = _class_name(hp[key])
            if block in _INTERACTIONS:
                raise _unsupported(source, _INTERACTIONS[block])
    for key in _LITERAL_KEYS:  # mace-torch's convert_to_json_format writes numbers and lists as str()
        if isinstance(hp.get(key), str):
            try:
                hp[key] = ast.literal_eval(hp[key])
            except (ValueError, SyntaxError):
                raise UserError(f"{source}: {key} = {hp[key]!r} is not a number or a list") from None
    return hp


def _irreps_terms(irreps) -> set[str]:
    return {term.split("x")[-1] for term in str(irreps).replace(" ", "").split("+") if term}


def _scalar_count(irreps) -> int:
    total = 0
    for term in str(irreps).replace(" ", "").split("+"):
        mul, _, ir = term.partition("x")
        if ir == "0e":
            total += int(mul)
    return total


# ------------------------------------------------------------------------------------------ heads
def choose_head(heads: list[str], head: str | None, source) -> str:
    """The head to convert: ``head``, the only one, or the one named 'default' (as MACECalculator)."""
    if head is not None:
        if head not in heads:
            raise UserError(f"{source}: no head {head!r}; this model's heads are {', '.join(heads)}; pick one "
                            "with --head")
        return head
    if len(heads) == 1:
        return heads[0]
    defaults = [h for h in heads if h.lower() == "default"]
    if not defaults:
        raise UserError(f"{source}: a multi-head model (heads {', '.join(heads)}) without a 'Default' head; "
                        "pick one with --head NAME")
    print(f"multi-head model (heads {', '.join(heads)}): converting head {defaults[0]!r}, as mace-torch's "
          "calculator does; pick another with --head NAME", flush=True)
    return defaults[0]


def select_head(state: dict, hp: dict, index: int, source) -> tuple[dict, dict]:
    """A single-head state dict and hyperparameters: head ``index``'s readout columns, E0s, scale, shift.

    mace-torch's multi-head readouts give one output column per head; the last (MLP) readout has
    ``heads x MLP`` hidden units, masked to the selected head's block, and e3nn's ``1/sqrt(fan_in)``
    of its second layer counts all heads' units, hence the factor ``1/sqrt(heads)`` on the kept weights.
    """
    heads = list(hp["heads"])
    n = len(heads)
    state, hp = dict(state), dict(hp)
    channels = _scalar_count(hp["hidden_irreps"])
    mlp = _scalar_count(hp.get("MLP_irreps", "16x0e"))

    def sliced(key: str, shape: tuple, index_expr):
        value = np.asarray(state[key])
        if value.size != int(np.prod(shape)):
            raise UserError(f"{source}: {key} has {value.size} numbers, expected {int(np.prod(shape))} for "
                            f"{n} heads (MLP_irreps {hp.get('MLP_irreps')!r} per head)")
        return np.ascontiguousarray(index_expr(value.reshape(shape))).reshape(-1)

    for key in list(state):
        if not key.startswith("readouts."):
            continue
        if key.endswith(".linear.weight"):
            state[key] = sliced(key, (np.size(state[key]) // n, n), lambda w: w[:, index])
        elif key.endswith(".linear_1.weight"):
            state[key] = sliced(key, (channels, n, mlp), lambda w: w[:, index, :])
        elif key.endswith(".linear_2.weight"):
            state[key] = sliced(key, (n, mlp, n), lambda w: w[index, :, index]) / math.sqrt(n)
        elif key.endswith(".bias") and np.size(state[key]) == 0 or key.endswith(".output_mask"):
            del state[key]
        else:
            raise _unsupported(source, f"the readout weight {key} (not a linear or MLP readout)")
    for key in ("scale_shift.scale", "scale_shift.shift"):
        if key in state and np.size(state[key]) == n:
            state[key] = np.ravel(state[key])[index:index + 1]
    key = "atomic_energies_fn.atomic_energies"
    if key in state and np.ndim(state[key]) == 2 and np.shape(state[key])[0] == n:
        state[key] = np.asarray(state[key])[index]
    if "atomic_energies" in hp and np.ndim(hp["atomic_energies"]) == 2:
        hp["atomic_energies"] = list(np.asarray(hp["atomic_energies"], np.float64)[index])
    for name in ("atomic_inter_scale", "atomic_inter_shift"):
        if name in hp and np.size(hp[name]) == n and np.ndim(hp[name]) == 1:
            hp[name] = float(np.ravel(hp[name])[index])
    hp["heads"] = [heads[index]]
    return state, hp


# ------------------------------------------------------------------------------------------ convert
def _element_numbers(elements, z_model: list[int], source) -> list[int] | None:
    from ase.data import atomic_numbers, chemical_symbols

    if elements is None:
        return None
    out = []
    for e in elements:
        text = str(e).strip()
        if text.isdigit():
            z = int(text)
            if not 1 <= z < len(chemical_symbols):
                raise UserError(f"--elements: atomic number {z} is out of range; give symbols such as H C N O")
        elif text in atomic_numbers:
            z = atomic_numbers[text]
        else:
            raise UserError(f"--elements: unknown element symbol {text!r}; give symbols such as H C N O")
        if z not in z_model:
            have = " ".join(chemical_symbols[k] for k in z_model)
            raise UserError(f"--elements: {chemical_symbols[z]} is not in the mace model {source} "
                            f"(it has {have}); leave it out")
        out.append(z)
    return sorted(set(out))


def convert_mace(model, output, head: str | None = None, elements=None, dtype: str = "float64",
                 hparams=None) -> Path:
    """Convert a mace-torch model into our checkpoint (see the module docstring); returns ``output``.

    Args:
        model: mace-torch ``.model``/``.pt``/``.pth`` file (pickle), or ``.npz``/``.safetensors`` state dict.
        output: our checkpoint (``.safetensors``), written atomically by :meth:`Potential.save`.
        head: the head of a multi-head model to keep (default: the one named 'default').
        elements: symbols or atomic numbers to keep (default: all of the model's).
        dtype: ``"float64"`` (mace-torch's precision) or ``"float32"``.
        hparams: JSON file of hyperparameters; required for a state dict, refused with a model file.

    Raises UserError (one line) for a missing, foreign or unsupported model and for bad options.
    """
    source, output = Path(model), Path(output)
    if dtype not in ("float32", "float64"):
        raise UserError(f"--dtype {dtype!r}: choose float32 or float64")
    if output.suffix.lower() != ".safetensors":
        raise UserError(f"{output}: the checkpoint is written as safetensors; name it OUTPUT.safetensors")
    if not source.is_file():
        raise UserError(f"{source}: model file not found; check the path")
    if output.resolve() == source.resolve():
        raise UserError(f"{output}: the output would overwrite the input model; choose another OUTPUT")
    suffix = source.suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        if hparams is not None:
            raise UserError(f"--hparams is for a state dict (.npz/.safetensors); {source} carries its own "
                            "hyperparameters, leave --hparams out")
        state, hp = read_mace_model_file(source)
    elif suffix in STATE_SUFFIXES:
        if hparams is None:
            raise UserError(f"{source}: a state dict needs --hparams JSON with mace-torch's constructor "
                            "arguments (schema: mindsponge_mm.models.mace_convert)")
        hp = _clean_json_hparams(read_hparams(hparams), hparams)
        state = read_state_dict(source)
        _check_state_pieces(state, source)
    else:
        raise UserError(f"{source}: unknown model file type {suffix or '(none)'!r}; give a mace-torch "
                        ".model/.pt/.pth file, or a state dict .npz/.safetensors with --hparams JSON")

    heads = [str(h) for h in (hp.get("heads") or ["Default"])]
    chosen = choose_head(heads, head, source)
    if len(heads) > 1:
        state, hp = select_head(state, {**hp, "heads": heads}, heads.index(chosen), source)
    z_model = state.get("atomic_numbers", hp.get("atomic_numbers"))
    if z_model is None:
        raise UserError(f"{source}: the model's atomic numbers are neither in the state dict nor in the "
                        "hyperparameters; add atomic_numbers to the JSON")
    keep = _element_numbers(elements, [int(z) for z in np.ravel(z_model)], source)

    from ..models import Potential
    from ..models.mace_convert import model_from_mace_state_dict

    net = model_from_mace_state_dict(state, hp, elements=keep, dtype=dtype)
    Potential(net).save(output)

    from ase.data import chemical_symbols

    z_all = [int(z) for z in np.ravel(z_model)]
    e0 = state.get("atomic_energies_fn.atomic_energies", hp.get("atomic_energies"))
    e0 = np.zeros(len(z_all)) if e0 is None else np.asarray(e0, np.float64).reshape(-1, len(z_all))[0]
    n_weights = sum(int(np.prod(p.shape)) for p in net.get_parameters())
    symbols = " ".join(chemical_symbols[z] for z in net.elements)
    print(f"wrote {output}: mace, elements {symbols}, cutoff {net.cutoff:g} Å, hidden {hp['hidden_irreps']}, "
          f"{hp['num_interactions']} interactions, {n_weights} weights, head {chosen}, {dtype}")
    print("E0s (eV): " + ", ".join(f"{chemical_symbols[z]} {e0[z_all.index(z)]:.6g}" for z in net.elements))
    return output
