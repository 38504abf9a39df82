// Host side of the NeighborList Ascend C operator: prototype registration (OpDef), shape and
// dtype inference, and the tiling function.
//
// Semantics are those of kernels/cpu/neighbor_list.cc (NeighborListAOT), i.e. ASE
// neighbor_list("ijS"): full list, integer cell shifts S with r_ij = R[j] - R[i] + S @ cell,
// strict d < cutoff, no self pairs with S == 0, output ordered by i.
//
//   inputs : positions [N, 3] float32, cells [S, 3, 3] float32, pbc [S, 3] bool,
//            offsets [S + 1] int32, cutoff [1] float32,
//            capacity_like [C] int32 (only its length is used: it fixes the static capacity C)
//   outputs: idx_i [C] int32, idx_j [C] int32, shifts [C, 3] int32, count [1] int32
// (the signature of the CPU and CUDA NeighborListAOT entries, so callers can swap kernels).
//
// count > C means overflow (only the first C pairs were written); negative counts are errors:
// -1 non-finite position or cell, -2 degenerate periodic cell, -3 cutoff not finite and
// positive, or offsets not non-decreasing within [0, N]. Unused slots are 0.
#include <algorithm>
#include <cstdint>

#include "neighbor_list_tiling.h"
#include "register/op_def_registry.h"
#include "tiling/platform/platform_ascendc.h"

namespace {

constexpr size_t kInPositions = 0;
constexpr size_t kInCells = 1;
constexpr size_t kInPbc = 2;
constexpr size_t kInOffsets = 3;
constexpr size_t kInCutoff = 4;
constexpr size_t kInCapacityLike = 5;

constexpr uint64_t kAlign = 512;                  // alignment of workspace sub-regions (bytes)
constexpr uint64_t kSlotBytes = 32;               // one count/error slot per core
constexpr uint64_t kMinAtomsPerCore = 256;        // below this a core is not worth its grid rebuild
constexpr uint64_t kMaxAtoms = 1ull << 28;        // keeps every int32 offset of the kernel in range
constexpr uint64_t kWorkspaceBudget = 2ull << 30; // cap of the cell-list regions of all cores (bytes)

inline uint64_t RoundUp(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }
inline uint64_t CeilDiv(uint64_t x, uint64_t a) { return (x + a - 1) / a; }

}  // namespace

namespace optiling {

static ge::graphStatus NeighborListTiling(gert::TilingContext* context)
{
    const gert::StorageShape* posShape = context->GetInputShape(kInPositions);
    const gert::StorageShape* cellShape = context->GetInputShape(kInCells);
    const gert::StorageShape* pbcShape = context->GetInputShape(kInPbc);
    const gert::StorageShape* offShape = context->GetInputShape(kInOffsets);
    const gert::StorageShape* cutShape = context->GetInputShape(kInCutoff);
    const gert::StorageShape* capShape = context->GetInputShape(kInCapacityLike);
    if (posShape == nullptr || cellShape == nullptr || pbcShape == nullptr || offShape == nullptr ||
        cutShape == nullptr || capShape == nullptr) {
        return ge::GRAPH_FAILED;
    }
    const gert::Shape& cap = capShape->GetStorageShape();
    if (cap.GetDimNum() != 1 || cap.GetDim(0) < 0 || cap.GetDim(0) > INT32_MAX) {
        return ge::GRAPH_FAILED;
    }
    const gert::Shape& pos = posShape->GetStorageShape();
    const gert::Shape& cell = cellShape->GetStorageShape();
    const gert::Shape& pbc = pbcShape->GetStorageShape();
    const gert::Shape& off = offShape->GetStorageShape();
    if (pos.GetDimNum() != 2 || pos.GetDim(1) != 3 || cell.GetDimNum() != 3 || cell.GetDim(1) != 3 ||
        cell.GetDim(2) != 3 || pbc.GetDimNum() != 2 || pbc.GetDim(0) != cell.GetDim(0) || pbc.GetDim(1) != 3 ||
        off.GetDimNum() != 1 || off.GetDim(0) != cell.GetDim(0) + 1 || cutShape->GetStorageShape().GetShapeSize() != 1) {
        return ge::GRAPH_FAILED;
    }
    const uint64_t numAtoms = static_cast<uint64_t>(pos.GetDim(0));
    const uint64_t numStructures = static_cast<uint64_t>(cell.GetDim(0));
    const uint64_t capacity = static_cast<uint64_t>(cap.GetDim(0));
    if (numAtoms > kMaxAtoms || numStructures > kMaxAtoms) {
        return ge::GRAPH_FAILED;
    }

    // Cores: contiguous atom ranges, as the CPU kernel's threads. All cores take part in one
    // SyncAll, so the block dim must not exceed the vector cores that can run at once.
    auto platform = platform_ascendc::PlatformAscendC(context->GetPlatformInfo());
    uint64_t coreNum = platform.GetCoreNumAiv();
    if (coreNum == 0) {
        coreNum = platform.GetCoreNum();
    }
    coreNum = std::max<uint64_t>(1, std::min<uint64_t>(coreNum, kNeighborListMaxCores));
    uint64_t usedCores = std::max<uint64_t>(1, std::min<uint64_t>(coreNum, CeilDiv(numAtoms, kMinAtomsPerCore)));

    // Per-core cell-list region (int32 words): bin starts [maxBins + 1], per-atom records
    // (wrap mx, my, mz, bin) [4 N], bin-sorted local atom indices [N]. A structure never has
    // more than N atoms, and the CPU rule caps its bins at max(27, 2 n) <= max(27, 2 N).
    const uint64_t maxBins = std::max<uint64_t>(27, 2 * numAtoms);
    const uint64_t metaOffset = RoundUp(maxBins + 1, 8);
    const uint64_t sortedOffset = metaOffset + RoundUp(4 * numAtoms, 8);
    const uint64_t gridWords = sortedOffset + RoundUp(numAtoms, 8);
    const uint64_t gridBytes = RoundUp(gridWords * sizeof(int32_t), kAlign);
    while (usedCores > 1 && usedCores * gridBytes > kWorkspaceBudget) {
        --usedCores;  // every core rebuilds the grid of the structures it touches: bound the memory
    }

    // Output sub-ranges: core k stages its pairs in its own chunk of ceil(C / B) pairs (rounded
    // up to 8 so every chunk starts 32-byte aligned); the final compaction moves them into place.
    const uint64_t stageChunk = RoundUp(CeilDiv(capacity, usedCores), 8);
    const uint64_t zeroChunk = CeilDiv(capacity, usedCores);

    // User workspace: [slots | staging | grids]
    const uint64_t slotBytes = RoundUp(usedCores * kSlotBytes, kAlign);
    const uint64_t stageOffset = slotBytes;
    const uint64_t stageBytes = RoundUp(usedCores * stageChunk * 5 * sizeof(int32_t), kAlign);
    const uint64_t gridOffset = stageOffset + stageBytes;
    const uint64_t userBytes = gridOffset + usedCores * gridBytes;

    NeighborListTilingData tiling;
    tiling.set_gridBytes(gridBytes);
    tiling.set_stageOffset(stageOffset);
    tiling.set_gridOffset(gridOffset);
    tiling.set_numAtoms(static_cast<uint32_t>(numAtoms));
    tiling.set_numStructures(static_cast<uint32_t>(numStructures));
    tiling.set_capacity(static_cast<uint32_t>(capacity));
    tiling.set_usedCores(static_cast<uint32_t>(usedCores));
    tiling.set_stageChunk(static_cast<uint32_t>(stageChunk));
    tiling.set_zeroChunk(static_cast<uint32_t>(zeroChunk));
    tiling.set_maxBins(static_cast<uint32_t>(maxBins));
    tiling.set_metaOffset(static_cast<uint32_t>(metaOffset));
    tiling.set_sortedOffset(static_cast<uint32_t>(sortedOffset));
    tiling.set_reserved(0);
    uint32_t atomBegin[kNeighborListMaxCores + 2] = {0};
    uint32_t structBegin[kNeighborListMaxCores + 2] = {0};
    for (uint64_t k = 0; k <= usedCores; ++k) {
        atomBegin[k] = static_cast<uint32_t>(numAtoms * k / usedCores);
        structBegin[k] = static_cast<uint32_t>(numStructures * k / usedCores);
    }
    tiling.set_atomBegin(atomBegin);
    tiling.set_structBegin(structBegin);

    context->SetBlockDim(static_cast<uint32_t>(usedCores));
    context->SetTilingKey(0);
    // The kernel synchronises all cores once (SyncAll): ask for batch scheduling, so that the
    // kernel starts only when all its cores are free (see the README on CANN versions).
    context->SetScheduleMode(1);
    tiling.SaveToBuffer(context->GetRawTilingData()->GetData(), context->GetRawTilingData()->GetCapacity());
    context->GetRawTilingData()->SetDataSize(tiling.GetDataSize());

    size_t* workspaces = context->GetWorkspaceSizes(1);
    if (workspaces == nullptr) {
        return ge::GRAPH_FAILED;
    }
    workspaces[0] = static_cast<size_t>(platform.GetLibApiWorkSpaceSize() + userBytes);
    return ge::GRAPH_SUCCESS;
}

}  // namespace optiling

namespace ge {

static ge::graphStatus NeighborListInferShape(gert::InferShapeContext* context)
{
    const gert::Shape* capacityLike = context->GetInputShape(kInCapacityLike);
    if (capacityLike == nullptr || capacityLike->GetDimNum() != 1 || capacityLike->GetDim(0) > INT32_MAX) {
        return GRAPH_FAILED;
    }
    const int64_t capacity = capacityLike->GetDim(0);  // -1 (unknown length) passes through
    gert::Shape* idxI = context->GetOutputShape(0);
    gert::Shape* idxJ = context->GetOutputShape(1);
    gert::Shape* shifts = context->GetOutputShape(2);
    gert::Shape* count = context->GetOutputShape(3);
    if (idxI == nullptr || idxJ == nullptr || shifts == nullptr || count == nullptr) {
        return GRAPH_FAILED;
    }
    idxI->SetDimNum(1);
    idxI->SetDim(0, capacity);
    idxJ->SetDimNum(1);
    idxJ->SetDim(0, capacity);
    shifts->SetDimNum(2);
    shifts->SetDim(0, capacity);
    shifts->SetDim(1, 3);
    count->SetDimNum(1);
    count->SetDim(0, 1);
    return GRAPH_SUCCESS;
}

static ge::graphStatus NeighborListInferDataType(gert::InferDataTypeContext* context)
{
    for (size_t i = 0; i < 4; ++i) {
        context->SetOutputDataType(i, ge::DT_INT32);
    }
    return GRAPH_SUCCESS;
}

}  // namespace ge

namespace ops {

class NeighborList : public OpDef {
public:
    explicit NeighborList(const char* name) : OpDef(name)
    {
        this->Input("positions").ParamType(REQUIRED).DataType({ge::DT_FLOAT}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Input("cells").ParamType(REQUIRED).DataType({ge::DT_FLOAT}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Input("pbc").ParamType(REQUIRED).DataType({ge::DT_BOOL}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Input("offsets").ParamType(REQUIRED).DataType({ge::DT_INT32}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Input("cutoff").ParamType(REQUIRED).DataType({ge::DT_FLOAT}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Input("capacity_like").ParamType(REQUIRED).DataType({ge::DT_INT32}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Output("idx_i").ParamType(REQUIRED).DataType({ge::DT_INT32}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Output("idx_j").ParamType(REQUIRED).DataType({ge::DT_INT32}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Output("shifts").ParamType(REQUIRED).DataType({ge::DT_INT32}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});
        this->Output("count").ParamType(REQUIRED).DataType({ge::DT_INT32}).Format({ge::FORMAT_ND})
            .UnknownShapeFormat({ge::FORMAT_ND});

        this->SetInferShape(ge::NeighborListInferShape).SetInferDataType(ge::NeighborListInferDataType);
        // DataCopyPad (unaligned GM copies) and the hardware SyncAll need Atlas A2/A3 class parts.
        this->AICore().SetTiling(optiling::NeighborListTiling).AddConfig("ascend910b").AddConfig("ascend910_93");
    }
};

OP_ADD(NeighborList);

}  // namespace ops
