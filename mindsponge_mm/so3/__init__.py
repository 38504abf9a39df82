"""SO(3)/O(3) toolkit in e3nn's real basis: Wigner 3j and D, irreps, spherical harmonics, equivariant layers.

Conventions (same as e3nn, so coefficients and models compare one to one):

* real basis with the polar axis along **y**; the l = 1 components are ordered (x, y, z), so
  ``D_from_matrix(1, R) == R`` and ``Y_1(x) = √3 x/|x|``;
* spherical harmonics use "component" normalisation, ``‖Y_l(x̂)‖² = 2l+1``, concatenated over
  ``l = 0..l_max`` (``[..., (l_max+1)²]``);
* ``wigner_3j`` has Frobenius norm 1 and e3nn's sign (``wigner_3j(1,1,0) = I/√3``), computed
  exactly (rational arithmetic with symbolic square roots);
* features are laid out "mul_ir" (entry after entry, copy after copy) as e3nn.

e3nn 0.4.4 (which mace-torch 0.3 pins) gives some 3j symbols with an odd ``l1 + l2 + l3`` the
opposite sign; ``symmetric_contraction.wigner_3j_e3nn04`` has that sign and builds mace-torch's
product basis (:func:`mace_coupling_basis`).

Layers, one module each: :mod:`.linear` (``EquivariantLinear``), :mod:`.tensor_product`
(``TensorProductUVU``), :mod:`.gate` (``Gate``), :mod:`.symmetric_contraction`
(``SymmetricContraction``), :mod:`.element_linear` (``ElementLinear``, mace-torch's skip connection).

:mod:`.wigner` and :mod:`.irreps` are pure numpy (import them directly to avoid loading
MindSpore); the package imports everything, including the MindSpore parts.
"""
from .irreps import Irrep, Irreps, MulIr
from .wigner import (
    D_from_matrix,
    angles_to_matrix,
    cartesian_generators,
    change_basis_real_to_complex,
    random_rotation,
    so3_generators,
    wigner_3j,
    wigner_D,
)

from .spherical_harmonics import SphericalHarmonics, sh_dim, spherical_harmonics, spherical_harmonics_np  # noqa: E402
from .element_linear import ElementLinear  # noqa: E402
from .gate import ACTIVATIONS, Gate, normalize2mom_constant  # noqa: E402
from .linear import EquivariantLinear  # noqa: E402
from .symmetric_contraction import (  # noqa: E402
    SymmetricContraction,
    from_channels,
    mace_coupling_basis,
    symmetric_coupling_basis,
    to_channels,
)
from .tensor_product import TensorProductUVU  # noqa: E402

__all__ = [
    "Irrep",
    "Irreps",
    "MulIr",
    "wigner_3j",
    "wigner_D",
    "D_from_matrix",
    "angles_to_matrix",
    "random_rotation",
    "so3_generators",
    "cartesian_generators",
    "change_basis_real_to_complex",
    "spherical_harmonics",
    "spherical_harmonics_np",
    "SphericalHarmonics",
    "sh_dim",
    "EquivariantLinear",
    "TensorProductUVU",
    "Gate",
    "SymmetricContraction",
    "symmetric_coupling_basis",
    "to_channels",
    "from_channels",
    "normalize2mom_constant",
    "ElementLinear",
    "mace_coupling_basis",
]
