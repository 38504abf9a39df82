"""Wigner 3j symbols and Wigner D matrices in e3nn's real basis (pure numpy, no MindSpore).

Conventions (identical to e3nn >= 0.4):

* **Real basis.** An irrep of degree ``l`` has ``2l+1`` real components indexed ``0..2l``
  (real ``m = -l..l``). The real components are related to the complex (Condon–Shortley)
  ones by :func:`change_basis_real_to_complex` ``Q_l`` (``Y_complex = Q_l @ Y_real``):

      Q[l+m, l+|m|] = 1/√2,           Q[l+m, l-|m|] = -i/√2           (m < 0)
      Q[l,   l]     = 1
      Q[l+m, l+|m|] = (-1)^m/√2,      Q[l+m, l-|m|] = i (-1)^m/√2     (m > 0)

  and the whole matrix is multiplied by ``(-i)^l`` so that all 3j symbols are real.
* **Axes.** The polar (``m = 0``) axis is **y**. For ``l = 1`` the three components are in
  the order ``(x, y, z)``: the l=1 representation of a rotation matrix ``R`` *is* ``R``
  (:func:`D_from_matrix` ``(1, R) == R``) and ``spherical_harmonics`` of degree 1 is
  ``√3 · (x, y, z) / r``.
* **Euler angles** (:func:`wigner_D`, :func:`angles_to_matrix`): ``R = R_y(α) R_x(β) R_y(γ)``.
* **3j normalisation and sign.** ``wigner_3j(l1, l2, l3)`` is the real-basis transform of the
  complex Clebsch–Gordan tensor ``<l1 m1 l2 m2 | l3 m3>`` (Condon–Shortley phase, Racah's
  formula), contracted as ``C[j,k,n] = Σ Q1[a,j] Q2[b,k] conj(Q3[c,n]) CG[a,b,c]`` and divided by
  its Frobenius norm, so ``Σ C² = 1``. No further sign fixing is applied — this reproduces
  e3nn's ``o3.wigner_3j``: ``wigner_3j(1,1,0) = +I/√3``, ``wigner_3j(1,1,1)[i,j,k] = +ε_ijk/√6``,
  ``wigner_3j(0,l,l) = +I/√(2l+1)``, and e3nn's spherical-harmonics recurrence holds with a
  positive constant (tested). ``C`` is invariant,
  ``C_{ijk} = Σ C_{abc} D1_{ai} D2_{bj} D3_{ck}`` for every rotation; cyclic permutations of the
  three (l, index) pairs leave it unchanged and a swap multiplies it by ``(-1)^(l1+l2+l3)``
  (real-basis 3j symbols with ``l1+l2+l3`` odd are *not* zero, e.g. the cross product).

The 3j symbols are computed exactly: Clebsch–Gordan coefficients by Racah's formula in rational
arithmetic, every number kept as a sum of rational (Gaussian) multiples of square roots of
square-free integers, the basis change and the norm done in that field, and only the final
``±sqrt(rational)`` is rounded to float64.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

__all__ = [
    "wigner_3j",
    "wigner_D",
    "D_from_matrix",
    "random_rotation",
    "angles_to_matrix",
    "change_basis_real_to_complex",
    "so3_generators",
    "cartesian_generators",
    "clebsch_gordan_complex",
]


# --------------------------------------------------------------------------- exact numbers
# A number is a dict {squarefree radicand r (int >= 1): (re, im) Fractions}; value = Σ (re + i im) √r.


def _squarefree(n: int) -> tuple[int, int]:
    """Write ``n > 0`` as ``s² · r`` with ``r`` square-free; return ``(s, r)``."""
    s, r, p = 1, 1, 2
    while p * p <= n:
        while n % (p * p) == 0:
            n //= p * p
            s *= p
        if n % p == 0:
            n //= p
            r *= p
        p += 1
    return s, r * n


def _sqrt_fraction(q: Fraction) -> dict:
    """Exact √q for a rational ``q >= 0`` as a radical number."""
    if q == 0:
        return {}
    a, b = q.numerator, q.denominator
    s, r = _squarefree(a * b)  # √(a/b) = √(ab)/b = s √r / b
    return {r: (Fraction(s, b), Fraction(0))}


def _rad_add(x: dict, y: dict) -> dict:
    out = dict(x)
    for r, (re, im) in y.items():
        re0, im0 = out.get(r, (Fraction(0), Fraction(0)))
        re1, im1 = re0 + re, im0 + im
        if re1 == 0 and im1 == 0:
            out.pop(r, None)
        else:
            out[r] = (re1, im1)
    return out


def _rad_mul(x: dict, y: dict) -> dict:
    out: dict = {}
    for r1, (a1, b1) in x.items():
        for r2, (a2, b2) in y.items():
            g = math.gcd(r1, r2)
            r = (r1 // g) * (r2 // g)  # √r1 √r2 = g √(r1 r2 / g²), square-free again
            term = {r: ((a1 * a2 - b1 * b2) * g, (a1 * b2 + b1 * a2) * g)}
            out = _rad_add(out, term)
    return out


def _rad_conj(x: dict) -> dict:
    return {r: (re, -im) for r, (re, im) in x.items()}


def _rad_const(re, im=0) -> dict:
    re, im = Fraction(re), Fraction(im)
    return {} if (re == 0 and im == 0) else {1: (re, im)}


def _rad_float(x: dict) -> float:
    """Float value of a real radical number (imaginary parts must vanish)."""
    if any(im != 0 for _, im in x.values()):
        raise ValueError("radical number is not real")
    if len(x) == 1:  # c √r: round once, as sign(c) √(c² r)
        ((r, (c, _)),) = x.items()
        return math.copysign(math.sqrt(c * c * r), c)
    return float(sum(float(c) * math.sqrt(r) for r, (c, _) in x.items()))


# --------------------------------------------------------------------------- Clebsch–Gordan


def _cg_exact(j1: int, m1: int, j2: int, m2: int, j3: int, m3: int) -> dict:
    """<j1 m1 j2 m2 | j3 m3> (Condon–Shortley phase) as an exact radical number (Racah's formula)."""
    if m3 != m1 + m2 or abs(m1) > j1 or abs(m2) > j2 or abs(m3) > j3:
        return {}
    if not abs(j1 - j2) <= j3 <= j1 + j2:
        return {}
    f = math.factorial
    pre = Fraction(
        (2 * j3 + 1) * f(j3 + j1 - j2) * f(j3 - j1 + j2) * f(j1 + j2 - j3),
        f(j1 + j2 + j3 + 1),
    ) * (f(j3 + m3) * f(j3 - m3) * f(j1 - m1) * f(j1 + m1) * f(j2 - m2) * f(j2 + m2))
    kmin = max(0, j2 - j3 - m1, j1 - j3 + m2)
    kmax = min(j1 + j2 - j3, j1 - m1, j2 + m2)
    s = Fraction(0)
    for k in range(kmin, kmax + 1):
        den = f(k) * f(j1 + j2 - j3 - k) * f(j1 - m1 - k) * f(j2 + m2 - k) * f(j3 - j2 + m1 + k) * f(j3 - j1 - m2 + k)
        s += Fraction((-1) ** k, den)
    if s == 0:
        return {}
    return _rad_mul(_rad_const(s), _sqrt_fraction(pre))


def clebsch_gordan_complex(l1: int, l2: int, l3: int) -> np.ndarray:
    """Complex-basis Clebsch–Gordan tensor ``<l1 m1 l2 m2 | l3 m3>`` [2l1+1, 2l2+1, 2l3+1] (index l+m), float64."""
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            m3 = m1 + m2
            if abs(m3) <= l3:
                v = _cg_exact(l1, m1, l2, m2, l3, m3)
                if v:
                    out[l1 + m1, l2 + m2, l3 + m3] = _rad_float(v)
    return out


# --------------------------------------------------------------------------- real basis


def _q_exact(l: int) -> list[list[tuple[int, dict]]]:
    """Columns of e3nn's real→complex matrix Q_l, exactly: col[j] = [(complex row, value), ...]."""
    inv_sqrt2 = {2: (Fraction(1, 2), Fraction(0))}  # 1/√2 = ½ √2
    phase = [(1, 0), (0, -1), (-1, 0), (0, 1)][l % 4]  # (-i)^l
    ph = _rad_const(*phase)
    entries: dict = {}
    for m in range(-l, 0):
        entries[(l + m, l + abs(m))] = _rad_mul(inv_sqrt2, _rad_const(1))
        entries[(l + m, l - abs(m))] = _rad_mul(inv_sqrt2, _rad_const(0, -1))
    entries[(l, l)] = _rad_const(1)
    for m in range(1, l + 1):
        sgn = (-1) ** m
        entries[(l + m, l + abs(m))] = _rad_mul(inv_sqrt2, _rad_const(sgn))
        entries[(l + m, l - abs(m))] = _rad_mul(inv_sqrt2, _rad_const(0, sgn))
    cols: list[list] = [[] for _ in range(2 * l + 1)]
    for (row, col), v in sorted(entries.items()):
        cols[col].append((row, _rad_mul(ph, v)))
    return cols


def change_basis_real_to_complex(l: int) -> np.ndarray:
    """e3nn's ``Q_l`` [2l+1, 2l+1] complex128 with ``Y_complex = Q_l @ Y_real`` (unitary, includes ``(-i)^l``)."""
    q = np.zeros((2 * l + 1, 2 * l + 1), dtype=np.complex128)
    for col, items in enumerate(_q_exact(l)):
        for row, v in items:
            q[row, col] = sum((float(a) + 1j * float(b)) * math.sqrt(r) for r, (a, b) in v.items())
    return q


def _check_l(*ls):
    for l in ls:
        if not (isinstance(l, (int, np.integer)) and l >= 0):
            raise ValueError(f"l must be a non-negative integer, got {l!r}")


@functools.lru_cache(maxsize=None)
def _wigner_3j_cached(l1: int, l2: int, l3: int) -> np.ndarray:
    out = np.zeros((2 * l1 + 1, 2 * l2 + 1, 2 * l3 + 1))
    if not abs(l1 - l2) <= l3 <= l1 + l2:
        out.setflags(write=False)
        return out
    cg = {}
    for m1 in range(-l1, l1 + 1):
        for m2 in range(-l2, l2 + 1):
            if abs(m1 + m2) <= l3:
                v = _cg_exact(l1, m1, l2, m2, l3, m1 + m2)
                if v:
                    cg[(l1 + m1, l2 + m2, l3 + m1 + m2)] = v
    q1, q2, q3 = _q_exact(l1), _q_exact(l2), _q_exact(l3)
    exact = {}
    norm2: dict = {}
    for j in range(2 * l1 + 1):
        for k in range(2 * l2 + 1):
            for n in range(2 * l3 + 1):
                acc: dict = {}
                for a, qa in q1[j]:
                    for b, qb in q2[k]:
                        for c, qc in q3[n]:
                            v = cg.get((a, b, c))
                            if v:
                                acc = _rad_add(acc, _rad_mul(_rad_mul(_rad_mul(qa, qb), _rad_conj(qc)), v))
                if acc:
                    if any(im != 0 for _, im in acc.values()):
                        raise AssertionError("real-basis 3j symbol came out complex")
                    exact[(j, k, n)] = acc
                    norm2 = _rad_add(norm2, _rad_mul(acc, acc))
    if not exact:
        out.setflags(write=False)
        return out
    # norm² is rational for these tensors; keep it exact
    if set(norm2) == {1}:
        nrm2 = norm2[1][0]
        for idx, v in exact.items():
            if len(v) == 1:
                ((r, (c, _)),) = v.items()
                out[idx] = math.copysign(math.sqrt(c * c * r / nrm2), c)
            else:  # never seen for l <= 10; still exact up to one rounding per term
                out[idx] = _rad_float(v) / math.sqrt(nrm2)
    else:  # pragma: no cover - defensive
        for idx, v in exact.items():
            out[idx] = _rad_float(v)
        out /= np.linalg.norm(out)
    out.setflags(write=False)
    return out


def wigner_3j(l1: int, l2: int, l3: int) -> np.ndarray:
    """Real-basis Wigner 3j tensor ``C`` [2l1+1, 2l2+1, 2l3+1] float64, e3nn's convention.

    ``Σ_ijk C_ijk² = 1``; ``C`` is invariant under ``D_l1(R) ⊗ D_l2(R) ⊗ D_l3(R)`` for every
    rotation. Returns an all-zero tensor when ``(l1, l2, l3)`` violates the triangle rule
    (e3nn raises there). A fresh, writable copy is returned on every call (cached internally).
    """
    _check_l(l1, l2, l3)
    return _wigner_3j_cached(int(l1), int(l2), int(l3)).copy()


# --------------------------------------------------------------------------- rotations


def _su2_generators(l: int) -> np.ndarray:
    """Complex-basis generators [3, 2l+1, 2l+1] (e3nn's ordering: 'x', 'z', '-y' in the complex frame)."""
    m = np.arange(-l, l)
    raising = np.diag(-np.sqrt(l * (l + 1) - m * (m + 1.0)), k=-1)
    m = np.arange(-l + 1, l + 1)
    lowering = np.diag(np.sqrt(l * (l + 1) - m * (m - 1.0)), k=1)
    m = np.arange(-l, l + 1)
    return np.stack([0.5 * (raising + lowering), np.diag(1j * m), -0.5j * (raising - lowering)]).astype(np.complex128)


@functools.lru_cache(maxsize=None)
def _so3_generators_cached(l: int) -> np.ndarray:
    x = _su2_generators(l)
    q = change_basis_real_to_complex(l)
    x = np.conj(q.T) @ x @ q
    if np.abs(x.imag).max() > 1e-10:
        raise AssertionError("real-basis generators came out complex")
    x = np.ascontiguousarray(x.real)
    x.setflags(write=False)
    return x


def so3_generators(l: int) -> np.ndarray:
    """e3nn's real-basis generators [3, 2l+1, 2l+1]: ``X[a]`` generates rotations about axis a = x, y, z.

    ``wigner_D(l, α, β, γ) = expm(α X[1]) expm(β X[0]) expm(γ X[1])``; for l = 1,
    ``X[a]_bc = -ε_abc`` (so ``expm(θ X[a])`` is the rotation by θ about axis a).
    Identical to :func:`cartesian_generators` (which checks that mapping).
    """
    _check_l(l)
    return _so3_generators_cached(int(l)).copy()


def _levi_civita_generators() -> np.ndarray:
    """Cartesian generators L_a with (L_a)_{bc} = -ε_{abc}: expm(θ L_a) rotates by θ about axis a."""
    eps = np.zeros((3, 3, 3))
    eps[0, 1, 2] = eps[1, 2, 0] = eps[2, 0, 1] = 1.0
    eps[0, 2, 1] = eps[2, 1, 0] = eps[1, 0, 2] = -1.0
    return -eps


@functools.lru_cache(maxsize=None)
def _cartesian_map() -> np.ndarray:
    """K with L_a = Σ_b K_ab X_b^(l=1); the same K maps e3nn's generators to x, y, z ones at every l."""
    x1 = _so3_generators_cached(1).reshape(3, 9)
    lc = _levi_civita_generators().reshape(3, 9)
    k, *_ = np.linalg.lstsq(x1.T, lc.T, rcond=None)
    k = k.T
    if np.abs(k @ x1 - lc).max() > 1e-12:
        raise AssertionError("l=1 generators are not the cartesian ones")
    return np.round(k, 12)


def cartesian_generators(l: int) -> np.ndarray:
    """Real-basis generators [3, 2l+1, 2l+1] ``J_a`` of rotations about the cartesian axes x, y, z.

    ``D_l(expm(θ L_a)) = expm(θ J_a)`` where ``(L_a)_bc = -ε_abc``; for l = 1, ``J_a = L_a``.
    """
    _check_l(l)
    return np.einsum("ab,bij->aij", _cartesian_map(), _so3_generators_cached(int(l)))


def _expm_antisymmetric(a: np.ndarray) -> np.ndarray:
    """exp(A) for a real antisymmetric matrix, via the eigendecomposition of the Hermitian iA."""
    w, v = np.linalg.eigh(1j * a)
    return (v @ np.diag(np.exp(-1j * w)) @ v.conj().T).real


def angles_to_matrix(alpha: float, beta: float, gamma: float) -> np.ndarray:
    """e3nn's Euler angles: ``R = R_y(α) R_x(β) R_y(γ)`` [3, 3]."""
    def ry(t):
        c, s = math.cos(t), math.sin(t)
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])

    def rx(t):
        c, s = math.cos(t), math.sin(t)
        return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])

    return ry(alpha) @ rx(beta) @ ry(gamma)


def wigner_D(l: int, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Real-basis Wigner D matrix [2l+1, 2l+1] float64 of ``R = R_y(α) R_x(β) R_y(γ)`` (e3nn's convention).

    ``D(R1 R2) = D(R1) D(R2)``, ``D(R)ᵀ = D(R)⁻¹``, ``wigner_D(1, α, β, γ) == angles_to_matrix(α, β, γ)``.
    """
    x = _so3_generators_cached(int(l))
    return _expm_antisymmetric(alpha * x[1]) @ _expm_antisymmetric(beta * x[0]) @ _expm_antisymmetric(gamma * x[1])


def _matrix_to_rotvec(r: np.ndarray) -> np.ndarray:
    """Rotation vector θ·n of a proper rotation matrix (robust near θ = π, via a quaternion)."""
    tr = np.trace(r)
    # Shepperd's method: pick the largest of 4 candidates for numerical stability
    cand = np.array([tr, r[0, 0], r[1, 1], r[2, 2]])
    k = int(np.argmax(cand))
    if k == 0:
        w = math.sqrt(max(1.0 + tr, 0.0)) / 2
        q = np.array([w, (r[2, 1] - r[1, 2]) / (4 * w), (r[0, 2] - r[2, 0]) / (4 * w), (r[1, 0] - r[0, 1]) / (4 * w)])
    else:
        i = k - 1
        j, kk = (i + 1) % 3, (i + 2) % 3
        s = math.sqrt(max(1.0 + r[i, i] - r[j, j] - r[kk, kk], 0.0)) * 2  # s = 4 |q_i|
        q = np.zeros(4)
        q[0] = (r[kk, j] - r[j, kk]) / s
        q[1 + i] = s / 4
        q[1 + j] = (r[j, i] + r[i, j]) / s
        q[1 + kk] = (r[kk, i] + r[i, kk]) / s
    q /= np.linalg.norm(q)
    if q[0] < 0:
        q = -q
    vn = np.linalg.norm(q[1:])
    if vn < 1e-300:
        return np.zeros(3)
    theta = 2 * math.atan2(vn, q[0])
    return theta * q[1:] / vn


def D_from_matrix(l: int, R: np.ndarray, parity: int | None = None) -> np.ndarray:
    """Real-basis representation [2l+1, 2l+1] float64 of an orthogonal 3x3 matrix ``R``.

    For a proper rotation, ``D_from_matrix(1, R) == R`` (components ordered x, y, z) and
    ``Y_l(R x) = D_from_matrix(l, R) Y_l(x)`` for :func:`spherical_harmonics`. For ``det R = -1``
    the matrix is ``parity · D(-R)``; ``parity`` defaults to ``(-1)^l`` (the parity of the
    spherical harmonics, so the identity above holds for improper ``R`` too).
    """
    _check_l(l)
    R = np.asarray(R, dtype=np.float64)
    det = np.linalg.det(R)
    if abs(abs(det) - 1) > 1e-6 or np.abs(R @ R.T - np.eye(3)).max() > 1e-6:
        raise ValueError("R must be an orthogonal 3x3 matrix")
    sign = 1.0
    if det < 0:
        R = -R
        sign = float((-1) ** l if parity is None else parity)
    theta_n = _matrix_to_rotvec(R)
    j = cartesian_generators(l)
    return sign * _expm_antisymmetric(np.einsum("a,aij->ij", theta_n, j))


def random_rotation(rng: np.random.Generator | int | None = None) -> np.ndarray:
    """A Haar-uniform random rotation matrix [3, 3] float64 (det +1) from a numpy Generator or seed."""
    rng = np.random.default_rng(rng)
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
            [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
            [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
        ]
    )
