// Tiling data of the NeighborList Ascend C operator (host side writes it, the kernel reads it
// with GET_TILING_DATA). See ../README.md for the design; the CPU reference is
// kernels/cpu/neighbor_list.cc.
//
// What the host can and cannot know. Tiling runs on the host and sees shapes only
// (no input is declared value-dependent, so nothing is copied back from the device and the op
// stays asynchronous). The cell-list geometry of a structure (bin counts, search ranges) depends on
// the cell values and, along non-periodic axes, on the spread of the positions, so it is computed
// on the device, per structure, by the kernel. The host decides everything that depends on shapes:
//   * how many vector cores run (usedCores) and which contiguous atom range each one owns
//     (atomBegin[k] .. atomBegin[k+1] over the rows of `positions`);
//   * which structures each core validates (structBegin[k] .. structBegin[k+1]) so that
//     the error checks of empty structures are not lost;
//   * the per-core output staging sub-range (stageChunk pairs), the per-core share of the
//     zero fill of unused output slots (zeroChunk), and the per-core cell-list workspace
//     (maxBins bins, gridBytes bytes), all laid out in the user workspace.
#ifndef MSMM_NEIGHBOR_LIST_TILING_H_
#define MSMM_NEIGHBOR_LIST_TILING_H_

#include "register/tilingdata_base.h"

namespace optiling {

// Upper bound of cores: the boundary arrays below have 66 entries (64 cores + 1 end, +1 to keep the
// struct size a multiple of 8 bytes); Atlas A2 parts have 40-48 vector cores. The literal 66 is
// used in the macros because the tiling generator records array lengths as written.
constexpr uint32_t kNeighborListMaxCores = 64;

BEGIN_TILING_DATA_DEF(NeighborListTilingData)
  // 64-bit fields first so every field is naturally aligned.
  TILING_DATA_FIELD_DEF(uint64_t, gridBytes);     // bytes of one core's cell-list region
  TILING_DATA_FIELD_DEF(uint64_t, stageOffset);   // byte offset of the staging area in the user workspace
  TILING_DATA_FIELD_DEF(uint64_t, gridOffset);    // byte offset of the cell-list regions in the user workspace
  TILING_DATA_FIELD_DEF(uint32_t, numAtoms);      // N = positions.shape[0]
  TILING_DATA_FIELD_DEF(uint32_t, numStructures); // S = cells.shape[0]
  TILING_DATA_FIELD_DEF(uint32_t, capacity);      // C = len(capacity_like), the static output length
  TILING_DATA_FIELD_DEF(uint32_t, usedCores);     // B = block dim
  TILING_DATA_FIELD_DEF(uint32_t, stageChunk);    // staging pairs per core (multiple of 8, >= ceil(C / B))
  TILING_DATA_FIELD_DEF(uint32_t, zeroChunk);     // output slots per core for the final zero fill, ceil(C / B)
  TILING_DATA_FIELD_DEF(uint32_t, maxBins);       // bins one grid may hold: max(27, 2 N), as the CPU cap
  TILING_DATA_FIELD_DEF(uint32_t, metaOffset);    // int32 offset of the per-atom records inside a grid region
  TILING_DATA_FIELD_DEF(uint32_t, sortedOffset);  // int32 offset of the bin-sorted atom list inside a grid region
  TILING_DATA_FIELD_DEF(uint32_t, reserved);      // keeps the scalar block a multiple of 8 bytes
  TILING_DATA_FIELD_DEF_ARR(uint32_t, 66, atomBegin);      // [B + 1] atom range bounds
  TILING_DATA_FIELD_DEF_ARR(uint32_t, 66, structBegin);  // [B + 1] structure bounds
END_TILING_DATA_DEF;

REGISTER_TILING_DATA_CLASS(NeighborList, NeighborListTilingData)

}  // namespace optiling

#endif  // MSMM_NEIGHBOR_LIST_TILING_H_
