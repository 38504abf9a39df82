// Ascend C kernel of the NeighborList operator: cell-list neighbor search for many structures at
// once with full periodic boundary conditions, the NPU counterpart of kernels/cpu/neighbor_list.cc.
//
// NOT COMPILED, NOT RUN: written and reviewed without a CANN toolkit or an NPU. See ../README.md,
// section "What was and was not compiled or tested here".
//
// Semantics (same as the CPU kernel): ase.neighborlist.neighbor_list("ijS"), full list, shifts S
// with r_ij = R[j] - R[i] + S @ cell, pairs with |r_ij| < cutoff (strict), no (i, i, S = 0) pairs,
// output ordered by i and, within one i, in the same scan order as the CPU kernel
// (neighbor bins ox, oy, oz ascending, atoms of a bin in ascending index). Bins are computed in
// float32 here (float64 on the CPU): an atom within rounding of a bin face, or a search range
// widened by the float32 slack, can change the order within one i, never the set of pairs.
//
// Per structure, on the device (the host cannot see the data; see op_host/neighbor_list_tiling.h):
//   1. binning basis B (periodic rows = lattice vectors, non-periodic rows = unit vectors
//      orthogonal to the others), its inverse and the face thickness of each axis;
//   2. pass 1 over the positions (streamed GM -> UB with DataCopyPad): finiteness check and the
//      spread lo/hi of the fractional coordinates along non-periodic axes;
//   3. bins per axis = floor(extent / cutoff) (at most 2^20), capped at max(27, 2 n) bins in total
//      by halving the largest axis, search range ceil(cutoff / width + slack) (at least 1 along
//      periodic axes, at most nbin - 1 along non-periodic ones): the CPU rules, evaluated in
//      float32, with the CPU's 1e-9 range slack widened to cover float32 rounding;
//   4. pass 2: wrap m (integer part along periodic axes) and bin of every atom, counting sort;
//   5. scan of the neighbor bins for the atoms this core owns, strict distance test.
//
// Multi-core scheme (one kernel, one SyncAll):
//   * core k owns the atoms [atomBegin[k], atomBegin[k+1]) and rebuilds the grid of every
//     structure that range touches (redundant across cores that share a structure);
//   * it writes its pairs, in order, into its own staging chunk of stageChunk pairs in the
//     workspace and counts them all (the count goes on past the chunk);
//   * each core publishes (count, error key) in a 32-byte slot; SyncAll;
//   * every core reads all slots, computes its output offset (prefix sum of the counts before it)
//     and copies its staged pairs to idx_i/idx_j/shifts at that offset (compaction). A core whose
//     pairs did not fit its chunk ("spill") runs its search a second time and writes straight to
//     the output at its offset. Everything past min(total, C) is zero-filled (each core a share).
//   * core 0 writes count = total pairs (or the error code).
// The result equals the CPU kernel's: the first min(total, C) pairs in order, count = total.
//
// Memory discipline: the cell-list arrays in the workspace are written and read by the scalar
// unit of the owning core only (GlobalTensor::SetValue/GetValue), so no DMA ever reads data that
// is still in the scalar data cache. DMA is used for: positions -> UB (grid passes), UB pair
// tiles -> staging/output, staging -> UB -> output (compaction), slots, zero fill.
#include "kernel_operator.h"

using namespace AscendC;

namespace msmm_nl {

constexpr int32_t kErrNonFinite = -1;   // a position or cell entry is NaN or inf
constexpr int32_t kErrDegenerate = -2;  // a periodic lattice vector is zero or the periodic ones are dependent
constexpr int32_t kErrArguments = -3;   // cutoff not finite and positive, or offsets not non-decreasing in [0, N]
constexpr int32_t kNoError = 0x7fffffff;

// Error keys order the failures like the CPU kernel, which stops at the first failing structure
// and, within it, checks the cell entries, then the lattice, then the positions.
constexpr int32_t kRankCell = 0;
constexpr int32_t kRankLattice = 1;
constexpr int32_t kRankPositions = 2;
constexpr int32_t kRanks = 4;

constexpr uint32_t kMaxCores = 64;    // matches op_host/neighbor_list_tiling.h
constexpr uint32_t kPosTile = 512;    // atoms per positions tile: 6 KiB of UB
constexpr uint32_t kPairTile = 1024;  // pairs per output tile: 4 + 4 + 12 KiB of UB
constexpr uint32_t kSlotInts = 8;     // one 32-byte slot per core: count lo, count hi, error key
constexpr float kHuge = 3.0e38f;
constexpr float kMaxBinsPerAxis = 1048576.0f;  // 2^20 bins per axis at most, as the CPU kernel

// ------------------------------------------------------------------------------------------ scalar math
union FloatBits {
    float f;
    uint32_t u;
};

__aicore__ inline bool IsFinite(float x)
{
    FloatBits b;
    b.f = x;
    return (b.u & 0x7f800000u) != 0x7f800000u;
}

__aicore__ inline float Abs(float x) { return x < 0.0f ? -x : x; }
__aicore__ inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }
__aicore__ inline int64_t Max64(int64_t a, int64_t b) { return a > b ? a : b; }

// Square root by Newton's method from an exponent-halving first guess (no reliance on a scalar
// libm on the AI Core). Four steps take the ~6 % first guess to full float precision.
__aicore__ inline float Sqrt(float x)
{
    if (!(x > 0.0f)) {
        return 0.0f;
    }
    if (!IsFinite(x)) {
        return x;
    }
    FloatBits b;
    b.f = x;
    b.u = (b.u >> 1) + 0x1fc00000u;
    float y = b.f;
    for (int it = 0; it < 5; ++it) {
        y = 0.5f * (y + x / y);
    }
    // one more step with the residual x - y^2 evaluated exactly (Dekker product of 12-bit halves),
    // so that exact squares give exact roots: the face thickness of common cells must be exact for
    // the bin counts to equal the CPU kernel's (e.g. 10 A cell, 5 A cutoff -> 2 bins, not 1)
    const float c = 4097.0f * y;
    const float big = c - y;
    const float yh = c - big;
    const float yl = y - yh;
    const float p = y * y;
    const float e = (((yh * yh - p) + yh * yl) + yl * yh) + yl * yl;
    return y + ((x - p) - e) / (2.0f * y);
}

// floor(x) as a float; |x| >= 2^23 is already integral in float32.
__aicore__ inline float Floor(float x)
{
    if (!(x > -8388608.0f && x < 8388608.0f)) {
        return x;
    }
    const float t = static_cast<float>(static_cast<int32_t>(x));  // truncation toward zero
    return (t > x) ? t - 1.0f : t;
}

__aicore__ inline int32_t ClampToInt32(float x)
{
    if (x >= 2147483520.0f) {
        return 2147483520;
    }
    if (x <= -2147483648.0f) {
        return static_cast<int32_t>(-2147483647 - 1);
    }
    return static_cast<int32_t>(x);
}

__aicore__ inline int32_t KeyOf(uint32_t structure, int32_t rank)
{
    return static_cast<int32_t>(structure) * kRanks + rank;
}

__aicore__ inline int32_t MinKey(int32_t a, int32_t b) { return a < b ? a : b; }

__aicore__ inline int64_t FloorDiv(int64_t a, int64_t b)
{
    const int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

struct V3 {
    float x, y, z;
};

__aicore__ inline V3 Cross(const V3& a, const V3& b)
{
    V3 r;
    r.x = a.y * b.z - a.z * b.y;
    r.y = a.z * b.x - a.x * b.z;
    r.z = a.x * b.y - a.y * b.x;
    return r;
}
__aicore__ inline float Dot(const V3& a, const V3& b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
__aicore__ inline float Norm(const V3& a) { return Sqrt(Dot(a, a)); }
__aicore__ inline V3 Scale(const V3& a, float s)
{
    V3 r;
    r.x = a.x * s;
    r.y = a.y * s;
    r.z = a.z * s;
    return r;
}

// ------------------------------------------------------------------------------------------ distance test
// The CPU kernel decides |rj - ri + S cell|^2 < cutoff^2 in float64 from float32 inputs, which is
// exact but for a ~1e-16 band. Plain float32 would flip pairs within ~1e-6 (relative) of the
// cutoff, about one pair in 10^5 in dense systems. So: a float32 estimate with a rigorous bound
// on its rounding error decides almost every candidate; the rare ones inside the bound are
// re-evaluated in double-float arithmetic (error-free sums and products, ~44-bit precision).
// The double-float steps only use products of 12-bit halves, so they stay exact if the compiler
// contracts a multiply-add into an FMA.
constexpr float kUnit = 5.9604645e-8f;           // 2^-24, unit roundoff of float32
constexpr float kSumErr = 8.0f * kUnit;          // >= the 5 roundings of one component (4 sums, 1 product)
constexpr float kSqErr = 6.0f * kUnit;           // >= 3 roundings of the squared sum + rounding of cutoff^2
constexpr float kRangeSlack = 64.0f * kUnit;     // relative slack of the search range (see BuildGrid)

struct DF {
    float hi;
    float lo;
};

__aicore__ inline DF TwoSum(float a, float b)
{
    const float s = a + b;
    const float bb = s - a;
    const float err = (a - (s - bb)) + (b - bb);
    DF r{s, err};
    return r;
}

__aicore__ inline void Split(float a, float& hi, float& lo)
{
    const float c = 4097.0f * a;  // 2^12 + 1
    const float big = c - a;
    hi = c - big;
    lo = a - hi;
}

__aicore__ inline DF TwoProd(float a, float b)
{
    const float p = a * b;
    float ah, al, bh, bl;
    Split(a, ah, al);
    Split(b, bh, bl);
    const float hh = ah * bh;
    const float hl = ah * bl;
    const float lh = al * bh;
    const float ll = al * bl;
    const float err = (((hh - p) + hl) + lh) + ll;
    DF r{p, err};
    return r;
}

__aicore__ inline DF AddDF(const DF& a, float b)  // (a.hi + a.lo) + b
{
    const DF s = TwoSum(a.hi, b);
    return TwoSum(s.hi, s.lo + a.lo);
}

// one component r_j - r_i + sx c0 + sy c1 + sz c2, compensated
__aicore__ inline DF ComponentDF(float rj, float ri, float sx, float c0, float sy, float c1, float sz, float c2)
{
    DF d = TwoSum(rj, -ri);
    const DF p0 = TwoProd(sx, c0);
    const DF p1 = TwoProd(sy, c1);
    const DF p2 = TwoProd(sz, c2);
    d = AddDF(d, p0.hi);
    d = AddDF(d, p1.hi);
    d = AddDF(d, p2.hi);
    return TwoSum(d.hi, d.lo + ((p0.lo + p1.lo) + p2.lo));
}

__aicore__ inline DF SquareDF(const DF& a)
{
    const DF p = TwoProd(a.hi, a.hi);
    return TwoSum(p.hi, p.lo + 2.0f * a.hi * a.lo);
}

// |d|^2 < cutoff^2 for d = rj - ri + (sx, sy, sz) . cell (cell rows c[0..2], c[3..5], c[6..8])
__aicore__ inline bool WithinCutoff(float rjx, float rjy, float rjz, float rix, float riy, float riz, float sx,
                                    float sy, float sz, const float c[9], float cutoff, float cut2)
{
    const float tx0 = sx * c[0], tx1 = sy * c[3], tx2 = sz * c[6];
    const float ty0 = sx * c[1], ty1 = sy * c[4], ty2 = sz * c[7];
    const float tz0 = sx * c[2], tz1 = sy * c[5], tz2 = sz * c[8];
    const float dx = rjx - rix + tx0 + tx1 + tx2;
    const float dy = rjy - riy + ty0 + ty1 + ty2;
    const float dz = rjz - riz + tz0 + tz1 + tz2;
    const float d2 = dx * dx + dy * dy + dz * dz;
    const float ex = kSumErr * (Abs(rjx) + Abs(rix) + Abs(tx0) + Abs(tx1) + Abs(tx2));
    const float ey = kSumErr * (Abs(rjy) + Abs(riy) + Abs(ty0) + Abs(ty1) + Abs(ty2));
    const float ez = kSumErr * (Abs(rjz) + Abs(riz) + Abs(tz0) + Abs(tz1) + Abs(tz2));
    const float tol = 2.0f * (2.0f * (Abs(dx) * ex + Abs(dy) * ey + Abs(dz) * ez) + (ex * ex + ey * ey + ez * ez) +
                              kSqErr * (d2 + cut2));
    if (d2 + tol < cut2) {
        return true;
    }
    if (d2 - tol >= cut2) {
        return false;
    }
    // undecided by float32: compensated evaluation
    const DF x = ComponentDF(rjx, rix, sx, c[0], sy, c[3], sz, c[6]);
    const DF y = ComponentDF(rjy, riy, sx, c[1], sy, c[4], sz, c[7]);
    const DF z = ComponentDF(rjz, riz, sx, c[2], sy, c[5], sz, c[8]);
    const DF x2 = SquareDF(x);
    const DF y2 = SquareDF(y);
    const DF z2 = SquareDF(z);
    DF sum = AddDF(x2, y2.hi);
    sum = AddDF(sum, z2.hi);
    sum = TwoSum(sum.hi, sum.lo + (y2.lo + z2.lo));
    const DF cc = TwoProd(cutoff, cutoff);
    const DF diff = TwoSum(sum.hi, -cc.hi);
    return diff.hi + (diff.lo + (sum.lo - cc.lo)) < 0.0f;
}

// ------------------------------------------------------------------------------------------ pipe sync
// Orders two pipes of this core: everything issued before on pipe A completes before pipe B goes on.
template <HardEvent E>
__aicore__ inline void PipeWait()
{
    const event_t id = static_cast<event_t>(GetTPipePtr()->FetchEventID(E));
    SetFlag<E>(id);
    WaitFlag<E>(id);
}

__aicore__ inline DataCopyExtParams Bytes(uint32_t bytes)
{
    DataCopyExtParams p{1, bytes, 0, 0, 0};
    return p;
}

// ------------------------------------------------------------------------------------------ geometry
// Smallest accepted |a . (b x c)| / (|a| |b| |c|) of the periodic rows (|a x b| / (|a| |b|) for two).
// The CPU kernel accepts down to 1e-12 in float64. In float32 the rounding noise of a triple
// product is ~1e-7 of the scale, so exactly dependent rows would pass a 1e-12 test and be binned
// with a meaningless inverse (and near-endless search ranges); 1e-5 keeps the inverse accurate to
// ~1e-2 at worst. Cells between 1e-12 and 1e-5 (angles below ~0.0006 degrees) give -2 on the NPU.
constexpr float kMinVolumeRatio = 1e-5f;

// Rows of B for the binning (the CPU kernel's binning_basis, in float32). Returns 0 or kErrDegenerate.
__aicore__ inline int32_t BinningBasis(const float cell[9], const bool pbc[3], V3 basis[3])
{
    V3 rows[3];
    for (int k = 0; k < 3; ++k) {
        rows[k].x = cell[3 * k];
        rows[k].y = cell[3 * k + 1];
        rows[k].z = cell[3 * k + 2];
        basis[k] = rows[k];
    }
    int periodic[3] = {0, 0, 0};
    int numPeriodic = 0;
    for (int k = 0; k < 3; ++k) {
        if (pbc[k]) {
            periodic[numPeriodic++] = k;
        }
    }
    if (numPeriodic == 3) {
        const float vol = Abs(Dot(rows[0], Cross(rows[1], rows[2])));
        const float scale = Norm(rows[0]) * Norm(rows[1]) * Norm(rows[2]);
        return (scale > 0.0f && vol > kMinVolumeRatio * scale) ? 0 : kErrDegenerate;
    }
    if (numPeriodic == 2) {
        const V3 n = Cross(rows[periodic[0]], rows[periodic[1]]);
        const float len = Norm(n);
        if (!(len > kMinVolumeRatio * Norm(rows[periodic[0]]) * Norm(rows[periodic[1]])) || len == 0.0f) {
            return kErrDegenerate;
        }
        for (int k = 0; k < 3; ++k) {
            if (!pbc[k]) {
                basis[k] = Scale(n, 1.0f / len);
            }
        }
        return 0;
    }
    if (numPeriodic == 1) {
        const V3 a = rows[periodic[0]];
        const float len = Norm(a);
        if (!(len > 0.0f)) {
            return kErrDegenerate;
        }
        const V3 unit = Scale(a, 1.0f / len);
        // the standard axis least aligned with a
        V3 e;
        e.x = 0.0f;
        e.y = 0.0f;
        e.z = 0.0f;
        if (Abs(unit.x) < 0.6f) {
            e.x = 1.0f;
        } else if (Abs(unit.y) < 0.6f) {
            e.y = 1.0f;
        } else {
            e.z = 1.0f;
        }
        V3 u = Cross(unit, e);
        u = Scale(u, 1.0f / Norm(u));
        const V3 v = Cross(unit, u);
        int filled = 0;
        for (int k = 0; k < 3; ++k) {
            if (!pbc[k]) {
                basis[k] = (filled++ == 0) ? u : v;
            }
        }
        return 0;
    }
    for (int k = 0; k < 3; ++k) {
        basis[k].x = (k == 0) ? 1.0f : 0.0f;
        basis[k].y = (k == 1) ? 1.0f : 0.0f;
        basis[k].z = (k == 2) ? 1.0f : 0.0f;
    }
    return 0;
}

// Everything the search of one structure needs (the CPU kernel's Grid, bins kept in the workspace).
struct Grid {
    int64_t first;      // global index of the structure's first atom
    int64_t count;      // its number of atoms n
    float cell[9];      // rows are lattice vectors
    bool pbc[3];
    float inv[9];       // inv[3 k + c]: column k of B^-1, so s_k = r . inv_k
    float thickness[3]; // face distance of the unit cell of B along each axis
    float lo[3];
    float hi[3];
    float reach;        // max |x| + |y| + |z| over the structure's positions (rounding bounds)
    float width[3];
    int64_t nbin[3];
    int64_t range[3];
};

// ------------------------------------------------------------------------------------------ pair output
// Pairs go to UB tiles (scalar writes) and leave in DMA bursts to a GM destination: a core's
// staging chunk, or the final outputs at the core's offset. At most `limit` pairs are written;
// all are counted.
class PairSink {
public:
    __aicore__ inline PairSink() {}

    __aicore__ inline void Bind(LocalTensor<int32_t> ti, LocalTensor<int32_t> tj, LocalTensor<int32_t> ts)
    {
        ti_ = ti;
        tj_ = tj;
        ts_ = ts;
    }

    __aicore__ inline void Reset(const GlobalTensor<int32_t>& gi, const GlobalTensor<int32_t>& gj,
                                 const GlobalTensor<int32_t>& gs, int64_t limit)
    {
        gi_ = gi;
        gj_ = gj;
        gs_ = gs;
        limit_ = limit;
        written_ = 0;
        total_ = 0;
        fill_ = 0;
        PipeWait<HardEvent::MTE3_S>();  // earlier DMA out of the tiles is done before we overwrite them
    }

    __aicore__ inline void Emit(int32_t i, int32_t j, int32_t sx, int32_t sy, int32_t sz)
    {
        if (total_ < limit_) {
            ti_.SetValue(fill_, i);
            tj_.SetValue(fill_, j);
            ts_.SetValue(3 * fill_, sx);
            ts_.SetValue(3 * fill_ + 1, sy);
            ts_.SetValue(3 * fill_ + 2, sz);
            if (++fill_ == kPairTile) {
                Flush();
            }
        }
        ++total_;
    }

    __aicore__ inline void Flush()
    {
        if (fill_ == 0) {
            return;
        }
        PipeWait<HardEvent::S_MTE3>();
        DataCopyPad(gi_[written_], ti_, Bytes(fill_ * sizeof(int32_t)));
        DataCopyPad(gj_[written_], tj_, Bytes(fill_ * sizeof(int32_t)));
        DataCopyPad(gs_[3 * written_], ts_, Bytes(3 * fill_ * sizeof(int32_t)));
        PipeWait<HardEvent::MTE3_S>();
        written_ += fill_;
        fill_ = 0;
    }

    __aicore__ inline int64_t Total() const { return total_; }
    __aicore__ inline bool Saturated() const { return total_ >= limit_; }

private:
    GlobalTensor<int32_t> gi_, gj_, gs_;
    LocalTensor<int32_t> ti_, tj_, ts_;
    int64_t limit_ = 0;
    int64_t written_ = 0;
    int64_t total_ = 0;
    uint32_t fill_ = 0;
};

// ------------------------------------------------------------------------------------------ kernel
struct KernelParams {
    uint64_t gridBytes;
    uint64_t stageOffset;
    uint64_t gridOffset;
    uint32_t numAtoms;
    uint32_t numStructures;
    uint32_t capacity;
    uint32_t usedCores;
    uint32_t stageChunk;
    uint32_t zeroChunk;
    uint32_t maxBins;
    uint32_t metaOffset;
    uint32_t sortedOffset;
    uint32_t atomBegin;   // this core's atom range
    uint32_t atomEnd;
    uint32_t structBegin; // this core's share of the structure-level checks
    uint32_t structEnd;
};

class NeighborListKernel {
public:
    __aicore__ inline NeighborListKernel() {}

    __aicore__ inline void Init(GM_ADDR positions, GM_ADDR cells, GM_ADDR pbc, GM_ADDR offsets, GM_ADDR cutoff,
                                GM_ADDR idxI, GM_ADDR idxJ, GM_ADDR shifts, GM_ADDR count, GM_ADDR userWorkspace,
                                const KernelParams& p, TPipe* pipe)
    {
        p_ = p;
        core_ = GetBlockIdx();
        const uint64_t n = p.numAtoms;
        const uint64_t s = p.numStructures;
        const uint64_t c = p.capacity;
        posGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(positions), 3 * n);
        cellGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(cells), 9 * s);
        pbcGm_.SetGlobalBuffer(reinterpret_cast<__gm__ uint8_t*>(pbc), 3 * s);
        offGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(offsets), s + 1);
        cutGm_.SetGlobalBuffer(reinterpret_cast<__gm__ float*>(cutoff), 1);
        outI_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(idxI), c);
        outJ_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(idxJ), c);
        outS_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(shifts), 3 * c);
        countGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(count), 1);

        slotsGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(userWorkspace), kSlotInts * p.usedCores);
        const uint64_t chunk = p.stageChunk;
        __gm__ int32_t* stage =
            reinterpret_cast<__gm__ int32_t*>(userWorkspace + p.stageOffset) + 5 * chunk * core_;
        stageI_.SetGlobalBuffer(stage, chunk);
        stageJ_.SetGlobalBuffer(stage + chunk, chunk);
        stageS_.SetGlobalBuffer(stage + 2 * chunk, 3 * chunk);
        gridGm_.SetGlobalBuffer(
            reinterpret_cast<__gm__ int32_t*>(userWorkspace + p.gridOffset + p.gridBytes * core_),
            p.gridBytes / sizeof(int32_t));

        pipe->InitBuffer(posBuf_, kPosTile * 3 * sizeof(float));
        pipe->InitBuffer(iBuf_, kPairTile * sizeof(int32_t));
        pipe->InitBuffer(jBuf_, kPairTile * sizeof(int32_t));
        pipe->InitBuffer(sBuf_, 3 * kPairTile * sizeof(int32_t));
        pipe->InitBuffer(slotBuf_, kSlotInts * sizeof(int32_t));
        pipe->InitBuffer(slotsBuf_, kMaxCores * kSlotInts * sizeof(int32_t));
        sink_.Bind(iBuf_.Get<int32_t>(), jBuf_.Get<int32_t>(), sBuf_.Get<int32_t>());
    }

    __aicore__ inline void Process()
    {
        // Scalar reads of GM must not hit lines cached by an earlier kernel on this core.
        DataCacheCleanAndInvalid<int32_t, CacheLine::ENTIRE_DATA_CACHE>(gridGm_);
        cutoff_ = cutGm_.GetValue(0);
        const int32_t earlyStatus = CheckArguments();  // every core computes the same value
        int32_t key = kNoError;

        // 1. search into the staging chunk (counting past its end)
        sink_.Reset(stageI_, stageJ_, stageS_, p_.stageChunk);
        if (earlyStatus == 0) {
            key = CheckCells();
            SearchPass(&key, false);  // stops before structures that cannot lower the key
        }
        sink_.Flush();
        const int64_t mine = sink_.Total();

        // 2. publish (count, key), wait for every core
        LocalTensor<int32_t> slot = slotBuf_.Get<int32_t>();
        slot.SetValue(0, static_cast<int32_t>(static_cast<uint32_t>(static_cast<uint64_t>(mine) & 0xffffffffull)));
        slot.SetValue(1, static_cast<int32_t>(static_cast<uint64_t>(mine) >> 32));
        slot.SetValue(2, key);
        for (uint32_t w = 3; w < kSlotInts; ++w) {
            slot.SetValue(w, 0);
        }
        PipeWait<HardEvent::S_MTE3>();
        DataCopyPad(slotsGm_[kSlotInts * core_], slot, Bytes(kSlotInts * sizeof(int32_t)));
        PipeBarrier<PIPE_ALL>();  // staging and slot writes have landed in GM
        SyncAll();

        // 3. read every core's slot
        LocalTensor<int32_t> slots = slotsBuf_.Get<int32_t>();
        DataCopyPadExtParams<int32_t> noPad{false, 0, 0, 0};
        DataCopyPad(slots, slotsGm_, Bytes(kSlotInts * p_.usedCores * sizeof(int32_t)), noPad);
        PipeWait<HardEvent::MTE2_S>();
        int64_t total = 0;
        int64_t offset = 0;
        int32_t minKey = kNoError;
        for (uint32_t k = 0; k < p_.usedCores; ++k) {
            const uint64_t lo = static_cast<uint32_t>(slots.GetValue(kSlotInts * k));
            const uint64_t hi = static_cast<uint32_t>(slots.GetValue(kSlotInts * k + 1));
            const int64_t cnt = static_cast<int64_t>((hi << 32) | lo);
            const int32_t kk = slots.GetValue(kSlotInts * k + 2);
            if (k < core_) {
                offset += cnt;
            }
            total += cnt;
            minKey = (kk < minKey) ? kk : minKey;
        }
        int32_t status = earlyStatus;
        if (status == 0 && minKey != kNoError) {
            status = (minKey % kRanks == kRankLattice) ? kErrDegenerate : kErrNonFinite;
        }
        const int64_t capacity = p_.capacity;
        int64_t filled = 0;  // output slots [0, filled) hold pairs
        if (status == 0) {
            filled = Min64(total, capacity);
            // 4. compaction: my pairs go to [offset, offset + n)
            if (offset < capacity && mine > 0) {
                const int64_t n = Min64(mine, capacity - offset);
                if (mine <= static_cast<int64_t>(p_.stageChunk)) {
                    CopyStaged(offset, n);
                } else {
                    // spill: my pairs did not fit my chunk; search again, straight into the output
                    sink_.Reset(outI_[offset], outJ_[offset], outS_[3 * offset], n);
                    int32_t unused = kNoError;
                    SearchPass(&unused, true);
                    sink_.Flush();
                }
            }
        }
        // 5. zero the unused slots in my share of the output
        const int64_t zBegin = static_cast<int64_t>(p_.zeroChunk) * core_;
        const int64_t zEnd = Min64(capacity, zBegin + p_.zeroChunk);
        ZeroOutputs(Max64(zBegin, filled), zEnd);
        // 6. count
        if (core_ == 0) {
            const int32_t value = (status != 0) ? status : static_cast<int32_t>(Min64(total, 2147483647));
            PipeWait<HardEvent::MTE3_S>();
            slot.SetValue(0, value);
            PipeWait<HardEvent::S_MTE3>();
            DataCopyPad(countGm_, slot, Bytes(sizeof(int32_t)));
        }
        // Write back and drop the scalar cache lines of the cell-list region while it is still ours.
        DataCacheCleanAndInvalid<int32_t, CacheLine::ENTIRE_DATA_CACHE>(gridGm_);
    }

private:
    // The CPU kernel's argument checks, before anything is indexed with the offsets: the cutoff
    // must be finite and positive, offsets[s] >= 0, offsets[s + 1] >= offsets[s], offsets[s + 1] <= N.
    __aicore__ inline int32_t CheckArguments()
    {
        if (!IsFinite(cutoff_) || !(cutoff_ > 0.0f)) {
            return kErrArguments;
        }
        const int64_t n = p_.numAtoms;
        for (uint32_t s = 0; s < p_.numStructures; ++s) {
            const int64_t a = offGm_.GetValue(s);
            const int64_t b = offGm_.GetValue(s + 1);
            if (a < 0 || b < a || b > n) {
                return kErrArguments;
            }
        }
        return 0;
    }

    __aicore__ inline void LoadCell(uint32_t s, Grid& g)
    {
        for (int e = 0; e < 9; ++e) {
            g.cell[e] = cellGm_.GetValue(9 * s + e);
        }
        for (int k = 0; k < 3; ++k) {
            g.pbc[k] = pbcGm_.GetValue(3 * s + k) != 0;
        }
        g.first = offGm_.GetValue(s);
        g.count = static_cast<int64_t>(offGm_.GetValue(s + 1)) - g.first;
    }

    __aicore__ inline bool CellFinite(const Grid& g) const
    {
        for (int e = 0; e < 9; ++e) {
            if (!IsFinite(g.cell[e])) {
                return false;
            }
        }
        return true;
    }

    // Structure-level checks of my share of structures (this also covers empty structures,
    // which no core's atom range touches). Returns the smallest error key found.
    __aicore__ inline int32_t CheckCells()
    {
        for (uint32_t s = p_.structBegin; s < p_.structEnd; ++s) {
            Grid g;
            LoadCell(s, g);
            if (!CellFinite(g)) {
                return KeyOf(s, kRankCell);
            }
            V3 basis[3];
            if (g.count > 0 && BinningBasis(g.cell, g.pbc, basis) != 0) {
                return KeyOf(s, kRankLattice);
            }
        }
        return kNoError;
    }

    // All structures that meet my atom range: build the grid, search my atoms, emit to sink_.
    // On the first failing structure the error key is stored and the pass stops; it also stops at
    // a structure whose keys cannot be below *key (the smallest key over all cores wins). Pairs
    // emitted before an error are discarded by the status check after SyncAll.
    __aicore__ inline void SearchPass(int32_t* key, bool stopWhenSaturated)
    {
        const int64_t aBegin = p_.atomBegin;
        const int64_t aEnd = p_.atomEnd;
        if (aBegin >= aEnd) {
            return;
        }
        // first structure s with offsets[s + 1] > aBegin (offsets were validated: non-decreasing)
        uint32_t lo = 0;
        uint32_t hi = p_.numStructures;
        while (lo < hi) {
            const uint32_t mid = lo + (hi - lo) / 2;
            if (static_cast<int64_t>(offGm_.GetValue(mid + 1)) > aBegin) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        for (uint32_t s = lo; s < p_.numStructures; ++s) {
            Grid g;
            LoadCell(s, g);
            if (g.first >= aEnd || KeyOf(s, kRankCell) >= *key) {
                break;
            }
            if (g.count == 0) {
                continue;
            }
            if (!CellFinite(g)) {
                *key = MinKey(*key, KeyOf(s, kRankCell));
                return;
            }
            const int32_t rank = BuildGrid(g);
            if (rank >= 0) {
                *key = MinKey(*key, KeyOf(s, rank));
                return;
            }
            const int64_t first = Max64(aBegin, g.first) - g.first;
            const int64_t last = Min64(aEnd, g.first + g.count) - g.first;
            Search(g, first, last, stopWhenSaturated);
            if (stopWhenSaturated && sink_.Saturated()) {
                return;
            }
        }
    }

    // Fractional coordinates and wrap of one position (the CPU kernel's loop body, in float32).
    __aicore__ inline void Fractional(const Grid& g, float px, float py, float pz, float s[3], int32_t m[3]) const
    {
        for (int k = 0; k < 3; ++k) {
            float v = px * g.inv[3 * k] + py * g.inv[3 * k + 1] + pz * g.inv[3 * k + 2];
            m[k] = 0;
            if (g.pbc[k]) {
                float f = Floor(v);
                v -= f;
                if (v >= 1.0f) {  // rounding of a value just below an integer
                    v -= 1.0f;
                    f += 1.0f;
                }
                m[k] = ClampToInt32(f);
            }
            s[k] = v;
        }
    }

    // Stream the structure's positions GM -> UB; call visit(localIndex, x, y, z) for each atom.
    // Returns false as soon as visit does.
    template <typename Visit>
    __aicore__ inline bool ForEachPosition(const Grid& g, Visit& visit)
    {
        LocalTensor<float> tile = posBuf_.Get<float>();
        DataCopyPadExtParams<float> noPad{false, 0, 0, 0.0f};
        for (int64_t a0 = 0; a0 < g.count; a0 += kPosTile) {
            const uint32_t cnt = static_cast<uint32_t>(Min64(kPosTile, g.count - a0));
            PipeWait<HardEvent::S_MTE2>();  // the scalar unit is done with the previous tile
            DataCopyPad(tile, posGm_[3 * (g.first + a0)], Bytes(cnt * 3 * sizeof(float)), noPad);
            PipeWait<HardEvent::MTE2_S>();
            for (uint32_t t = 0; t < cnt; ++t) {
                if (!visit(a0 + t, tile.GetValue(3 * t), tile.GetValue(3 * t + 1), tile.GetValue(3 * t + 2))) {
                    return false;
                }
            }
        }
        return true;
    }

    struct SpreadVisitor {  // pass 1: finiteness and spread of the fractional coordinates
        NeighborListKernel* self;
        const Grid* g;
        float* lo;
        float* hi;
        float* reach;
        __aicore__ inline bool operator()(int64_t, float x, float y, float z)
        {
            if (!IsFinite(x) || !IsFinite(y) || !IsFinite(z)) {
                return false;
            }
            const float r = Abs(x) + Abs(y) + Abs(z);
            *reach = (r > *reach) ? r : *reach;
            float s[3];
            int32_t m[3];
            self->Fractional(*g, x, y, z, s, m);
            for (int k = 0; k < 3; ++k) {
                lo[k] = (s[k] < lo[k]) ? s[k] : lo[k];
                hi[k] = (s[k] > hi[k]) ? s[k] : hi[k];
            }
            return true;
        }
    };

    struct BinVisitor {  // pass 2: wrap and bin of each atom, bin counts
        NeighborListKernel* self;
        const Grid* g;
        __aicore__ inline bool operator()(int64_t a, float x, float y, float z)
        {
            float s[3];
            int32_t m[3];
            self->Fractional(*g, x, y, z, s, m);
            int64_t b[3];
            for (int k = 0; k < 3; ++k) {
                float u = s[k];
                if (!g->pbc[k]) {
                    u = (g->width[k] > 0.0f) ? (s[k] - g->lo[k]) / (g->hi[k] - g->lo[k]) : 0.0f;
                }
                const int64_t idx = static_cast<int64_t>(u * static_cast<float>(g->nbin[k]));
                b[k] = Min64(Max64(idx, 0), g->nbin[k] - 1);
            }
            const int32_t lin = static_cast<int32_t>((b[0] * g->nbin[1] + b[1]) * g->nbin[2] + b[2]);
            GlobalTensor<int32_t>& grid = self->gridGm_;
            const uint64_t meta = self->p_.metaOffset + 4 * static_cast<uint64_t>(a);
            grid.SetValue(meta, m[0]);
            grid.SetValue(meta + 1, m[1]);
            grid.SetValue(meta + 2, m[2]);
            grid.SetValue(meta + 3, lin);
            grid.SetValue(lin + 1, grid.GetValue(lin + 1) + 1);
            return true;
        }
    };

    // The CPU kernel's build_grid. Returns -1 on success, else the error rank (lattice or positions).
    __aicore__ inline int32_t BuildGrid(Grid& g)
    {
        V3 basis[3];
        if (BinningBasis(g.cell, g.pbc, basis) != 0) {
            return kRankLattice;
        }
        // B^-1 columns are (b1 x b2, b2 x b0, b0 x b1) / det
        const V3 c[3] = {Cross(basis[1], basis[2]), Cross(basis[2], basis[0]), Cross(basis[0], basis[1])};
        const float det = Dot(basis[0], c[0]);
        for (int k = 0; k < 3; ++k) {
            g.inv[3 * k] = c[k].x / det;
            g.inv[3 * k + 1] = c[k].y / det;
            g.inv[3 * k + 2] = c[k].z / det;
            g.thickness[k] = Abs(det) / Norm(c[k]);
            g.lo[k] = kHuge;
            g.hi[k] = -kHuge;
        }
        g.reach = 0.0f;
        SpreadVisitor spread{this, &g, g.lo, g.hi, &g.reach};
        if (!ForEachPosition(g, spread)) {
            return kRankPositions;
        }
        // bins per axis and neighbor ranges (CPU rules)
        const int64_t maxBins = Max64(27, 2 * g.count);
        float extent[3];
        for (int k = 0; k < 3; ++k) {
            extent[k] = g.pbc[k] ? g.thickness[k] : (g.hi[k] - g.lo[k]);
            int64_t nb = 1;
            if (extent[k] > cutoff_) {  // floor(extent / cutoff), at most 2^20
                const float q = extent[k] / cutoff_;
                nb = (q >= kMaxBinsPerAxis) ? static_cast<int64_t>(kMaxBinsPerAxis) : static_cast<int64_t>(q);
            }
            g.nbin[k] = Max64(1, nb);
        }
        while (TooManyBins(g.nbin, maxBins)) {
            int k = 0;
            if (g.nbin[1] > g.nbin[k]) {
                k = 1;
            }
            if (g.nbin[2] > g.nbin[k]) {
                k = 2;
            }
            g.nbin[k] = Max64(1, g.nbin[k] / 2);
        }
        // Search range: ceil(cutoff / width) plus a relative slack, as the CPU kernel's
        // ceil(cutoff / width * (1 + 1e-9)), but sized for float32: bins come from float32
        // fractional coordinates, so a pair just inside the cutoff may look up to `slack` bins
        // farther apart than it is. The bound counts the rounding of s = r B^-1 (grows with the
        // reach of the positions), of lattice shifts seen through the rounded B^-1 (grows with the
        // shift, i.e. with the range and the unwrapping), of the bin index and of the ratio itself.
        const float rowSum = Norm(basis[0]) + Norm(basis[1]) + Norm(basis[2]);
        for (int k = 0; k < 3; ++k) {
            g.width[k] = extent[k] / static_cast<float>(g.nbin[k]);
            int64_t r = 0;
            if (g.width[k] > 0.0f) {
                const float q = cutoff_ / g.width[k];
                const float kappa = rowSum / g.thickness[k];
                const float slack = kRangeSlack * (g.reach / g.width[k] + (q + 1.0f) * kappa +
                                                   static_cast<float>(g.nbin[k]));
                float fr = q + slack;
                fr = (fr >= kMaxBinsPerAxis) ? kMaxBinsPerAxis : fr;
                r = static_cast<int64_t>(fr);
                if (static_cast<float>(r) < fr) {
                    ++r;  // ceil
                }
            }
            if (!g.pbc[k]) {
                r = Min64(r, g.nbin[k] - 1);
            }
            g.range[k] = Max64(r, g.pbc[k] ? 1 : 0);
        }
        // counting sort of the atoms into bins: starts [0, nBins], records, sorted list
        const int64_t nBins = g.nbin[0] * g.nbin[1] * g.nbin[2];
        for (int64_t b = 0; b <= nBins; ++b) {
            gridGm_.SetValue(b, 0);
        }
        BinVisitor bin{this, &g};
        ForEachPosition(g, bin);
        for (int64_t b = 0; b < nBins; ++b) {
            gridGm_.SetValue(b + 1, gridGm_.GetValue(b + 1) + gridGm_.GetValue(b));
        }
        for (int64_t a = 0; a < g.count; ++a) {  // stable: ascending atoms within a bin
            const int32_t b = gridGm_.GetValue(p_.metaOffset + 4 * a + 3);
            const int32_t t = gridGm_.GetValue(b);
            gridGm_.SetValue(p_.sortedOffset + t, static_cast<int32_t>(a));
            gridGm_.SetValue(b, t + 1);
        }
        for (int64_t b = nBins; b > 0; --b) {  // the cursors now hold the ends: shift back to starts
            gridGm_.SetValue(b, gridGm_.GetValue(b - 1));
        }
        gridGm_.SetValue(0, 0);
        return -1;
    }

    // nx * ny * nz > maxBins without overflow (every factor is at most 2^30)
    __aicore__ inline bool TooManyBins(const int64_t nbin[3], int64_t maxBins) const
    {
        if (nbin[0] > maxBins || nbin[1] > maxBins || nbin[2] > maxBins) {
            return true;
        }
        const int64_t xy = nbin[0] * nbin[1];
        if (xy > maxBins) {
            return true;
        }
        return xy * nbin[2] > maxBins;
    }

    // The CPU kernel's search(), for local atoms [aLo, aHi) of the grid. Scalar loops (see README).
    __aicore__ inline void Search(const Grid& g, int64_t aLo, int64_t aHi, bool stopWhenSaturated)
    {
        const float cut2 = cutoff_ * cutoff_;
        const int64_t nx = g.nbin[0];
        const int64_t ny = g.nbin[1];
        const int64_t nz = g.nbin[2];
        const uint64_t metaBase = p_.metaOffset;
        const uint64_t sortedBase = p_.sortedOffset;
        for (int64_t a = aLo; a < aHi; ++a) {
            if (stopWhenSaturated && sink_.Saturated()) {
                return;
            }
            const uint64_t metaA = metaBase + 4 * static_cast<uint64_t>(a);
            const int64_t lin = gridGm_.GetValue(metaA + 3);
            const int64_t b0 = lin / (ny * nz);
            const int64_t b1 = (lin / nz) % ny;
            const int64_t b2 = lin % nz;
            const int32_t ma0 = gridGm_.GetValue(metaA);
            const int32_t ma1 = gridGm_.GetValue(metaA + 1);
            const int32_t ma2 = gridGm_.GetValue(metaA + 2);
            const uint64_t ia = 3 * static_cast<uint64_t>(g.first + a);
            const float rix = posGm_.GetValue(ia);
            const float riy = posGm_.GetValue(ia + 1);
            const float riz = posGm_.GetValue(ia + 2);
            for (int64_t ox = -g.range[0]; ox <= g.range[0]; ++ox) {
                int64_t bx = b0 + ox;
                int64_t wx = 0;
                if (g.pbc[0]) {
                    wx = FloorDiv(bx, nx);
                    bx -= wx * nx;
                } else if (bx < 0 || bx >= nx) {
                    continue;
                }
                for (int64_t oy = -g.range[1]; oy <= g.range[1]; ++oy) {
                    int64_t by = b1 + oy;
                    int64_t wy = 0;
                    if (g.pbc[1]) {
                        wy = FloorDiv(by, ny);
                        by -= wy * ny;
                    } else if (by < 0 || by >= ny) {
                        continue;
                    }
                    for (int64_t oz = -g.range[2]; oz <= g.range[2]; ++oz) {
                        int64_t bz = b2 + oz;
                        int64_t wz = 0;
                        if (g.pbc[2]) {
                            wz = FloorDiv(bz, nz);
                            bz -= wz * nz;
                        } else if (bz < 0 || bz >= nz) {
                            continue;
                        }
                        const int64_t nb = (bx * ny + by) * nz + bz;
                        const int64_t tEnd = gridGm_.GetValue(nb + 1);
                        for (int64_t t = gridGm_.GetValue(nb); t < tEnd; ++t) {
                            const int64_t c = gridGm_.GetValue(sortedBase + t);
                            const uint64_t metaC = metaBase + 4 * static_cast<uint64_t>(c);
                            const int32_t sx = static_cast<int32_t>(wx) + ma0 - gridGm_.GetValue(metaC);
                            const int32_t sy = static_cast<int32_t>(wy) + ma1 - gridGm_.GetValue(metaC + 1);
                            const int32_t sz = static_cast<int32_t>(wz) + ma2 - gridGm_.GetValue(metaC + 2);
                            if (c == a && sx == 0 && sy == 0 && sz == 0) {
                                continue;
                            }
                            const uint64_t ic = 3 * static_cast<uint64_t>(g.first + c);
                            if (WithinCutoff(posGm_.GetValue(ic), posGm_.GetValue(ic + 1), posGm_.GetValue(ic + 2),
                                             rix, riy, riz, static_cast<float>(sx), static_cast<float>(sy),
                                             static_cast<float>(sz), g.cell, cutoff_, cut2)) {
                                sink_.Emit(static_cast<int32_t>(g.first + a), static_cast<int32_t>(g.first + c), sx, sy, sz);
                            }
                        }
                    }
                }
            }
        }
    }

    // staging[0, n) -> outputs[offset, offset + n), through UB
    __aicore__ inline void CopyStaged(int64_t offset, int64_t n)
    {
        LocalTensor<int32_t> ti = iBuf_.Get<int32_t>();
        LocalTensor<int32_t> tj = jBuf_.Get<int32_t>();
        LocalTensor<int32_t> ts = sBuf_.Get<int32_t>();
        DataCopyPadExtParams<int32_t> noPad{false, 0, 0, 0};
        for (int64_t p = 0; p < n; p += kPairTile) {
            const uint32_t cnt = static_cast<uint32_t>(Min64(kPairTile, n - p));
            PipeWait<HardEvent::MTE3_MTE2>();  // previous tile has left UB (and staging writes are done)
            DataCopyPad(ti, stageI_[p], Bytes(cnt * sizeof(int32_t)), noPad);
            DataCopyPad(tj, stageJ_[p], Bytes(cnt * sizeof(int32_t)), noPad);
            DataCopyPad(ts, stageS_[3 * p], Bytes(3 * cnt * sizeof(int32_t)), noPad);
            PipeWait<HardEvent::MTE2_MTE3>();
            DataCopyPad(outI_[offset + p], ti, Bytes(cnt * sizeof(int32_t)));
            DataCopyPad(outJ_[offset + p], tj, Bytes(cnt * sizeof(int32_t)));
            DataCopyPad(outS_[3 * (offset + p)], ts, Bytes(3 * cnt * sizeof(int32_t)));
        }
    }

    // outputs[begin, end) = 0 (idx_i, idx_j and the three shift components)
    __aicore__ inline void ZeroOutputs(int64_t begin, int64_t end)
    {
        if (begin >= end) {
            return;
        }
        LocalTensor<int32_t> zi = iBuf_.Get<int32_t>();
        LocalTensor<int32_t> zs = sBuf_.Get<int32_t>();
        PipeWait<HardEvent::MTE3_V>();  // no DMA is still reading these tiles
        PipeWait<HardEvent::S_V>();
        Duplicate<int32_t>(zi, 0, kPairTile);
        Duplicate<int32_t>(zs, 0, 3 * kPairTile);
        PipeWait<HardEvent::V_MTE3>();
        for (int64_t p = begin; p < end; p += kPairTile) {
            const uint32_t cnt = static_cast<uint32_t>(Min64(kPairTile, end - p));
            DataCopyPad(outI_[p], zi, Bytes(cnt * sizeof(int32_t)));
            DataCopyPad(outJ_[p], zi, Bytes(cnt * sizeof(int32_t)));
            DataCopyPad(outS_[3 * p], zs, Bytes(3 * cnt * sizeof(int32_t)));
        }
    }

    KernelParams p_;
    uint32_t core_ = 0;
    float cutoff_ = 0.0f;
    PairSink sink_;
    GlobalTensor<float> posGm_, cellGm_, cutGm_;
    GlobalTensor<uint8_t> pbcGm_;
    GlobalTensor<int32_t> offGm_, outI_, outJ_, outS_, countGm_;
    GlobalTensor<int32_t> slotsGm_, stageI_, stageJ_, stageS_, gridGm_;
    TBuf<TPosition::VECCALC> posBuf_, iBuf_, jBuf_, sBuf_, slotBuf_, slotsBuf_;
};

}  // namespace msmm_nl

// capacity_like is never read: only its length matters, and the host already turned it into
// tiling.capacity.
extern "C" __global__ __aicore__ void neighbor_list(GM_ADDR positions, GM_ADDR cells, GM_ADDR pbc, GM_ADDR offsets,
                                                    GM_ADDR cutoff, GM_ADDR capacity_like, GM_ADDR idx_i,
                                                    GM_ADDR idx_j, GM_ADDR shifts, GM_ADDR count, GM_ADDR workspace,
                                                    GM_ADDR tiling)
{
    (void)capacity_like;
#ifdef KERNEL_TASK_TYPE_DEFAULT
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_AIV_ONLY);  // vector cores only; SyncAll<true> syncs those
#endif
    GET_TILING_DATA(tilingData, tiling);
    GM_ADDR userWorkspace = GetUserWorkspace(workspace);
    if (userWorkspace == nullptr) {
        return;  // no workspace: cannot run (every core returns, so no core waits in SyncAll)
    }
    const uint32_t core = GetBlockIdx();
    msmm_nl::KernelParams params;
    params.gridBytes = tilingData.gridBytes;
    params.stageOffset = tilingData.stageOffset;
    params.gridOffset = tilingData.gridOffset;
    params.numAtoms = tilingData.numAtoms;
    params.numStructures = tilingData.numStructures;
    params.capacity = tilingData.capacity;
    params.usedCores = tilingData.usedCores;
    params.stageChunk = tilingData.stageChunk;
    params.zeroChunk = tilingData.zeroChunk;
    params.maxBins = tilingData.maxBins;
    params.metaOffset = tilingData.metaOffset;
    params.sortedOffset = tilingData.sortedOffset;
    params.atomBegin = tilingData.atomBegin[core];
    params.atomEnd = tilingData.atomBegin[core + 1];
    params.structBegin = tilingData.structBegin[core];
    params.structEnd = tilingData.structBegin[core + 1];

    TPipe pipe;
    msmm_nl::NeighborListKernel op;
    op.Init(positions, cells, pbc, offsets, cutoff, idx_i, idx_j, shifts, count, userWorkspace, params, &pipe);
    op.Process();
}
