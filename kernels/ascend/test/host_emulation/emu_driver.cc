// HOST EMULATION DRIVER: runs op_host/neighbor_list.cpp (InferShape, InferDataType, Tiling) and
// op_kernel/neighbor_list.cpp (one std::thread per "vector core") against the mock API in mock/.
// Inputs are copied into exactly-sized buffers, outputs and workspace are filled with garbage
// first, so out-of-bounds accesses abort and unwritten output slots show up.
#include <barrier>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "kernel_operator.h"
#include "register/op_def_registry.h"
#include "tiling/platform/platform_ascendc.h"

extern "C" void neighbor_list(GM_ADDR positions, GM_ADDR cells, GM_ADDR pbc, GM_ADDR offsets, GM_ADDR cutoff,
                              GM_ADDR capacity_like, GM_ADDR idx_i, GM_ADDR idx_j, GM_ADDR shifts, GM_ADDR count,
                              GM_ADDR workspace, GM_ADDR tiling);

namespace {
gert::StorageShape MakeShape(std::initializer_list<int64_t> d)
{
    gert::StorageShape s;
    s.shape_ = gert::Shape(d);
    return s;
}
}  // namespace

// Returns 0 on success; > 0 when the host side refused the inputs. info[0] = block dim,
// info[1] = workspace bytes, info[2] = schedule mode, info[3] = SyncAll calls per core.
extern "C" int emu_neighbor_list(const float* positions, int64_t n, const float* cells, const uint8_t* pbc,
                                 const int32_t* offsets, int64_t s, float cutoff, int64_t capacity, int aivCores,
                                 int32_t* idxI, int32_t* idxJ, int32_t* shifts, int32_t* count, int64_t* info)
{
    const ops::EmuRegistry& reg = ops::EmuRegistry::Get();
    if (reg.tiling == nullptr || reg.inferShape == nullptr || reg.inferDataType == nullptr) return 1;
    if (reg.inputs.size() != 6 || reg.outputs.size() != 4 || !reg.attrs.empty()) return 2;

    gert::InferShapeContext shapeCtx;
    shapeCtx.inputs_ = {gert::Shape({n, 3}), gert::Shape({s, 3, 3}), gert::Shape({s, 3}), gert::Shape({s + 1}),
                        gert::Shape({1}), gert::Shape({capacity})};
    if (reg.inferShape(&shapeCtx) != ge::GRAPH_SUCCESS) return 3;
    const auto& o = shapeCtx.outputs_;
    if (o[0].dims_ != std::vector<int64_t>{capacity} || o[1].dims_ != std::vector<int64_t>{capacity} ||
        o[2].dims_ != std::vector<int64_t>{capacity, 3} || o[3].dims_ != std::vector<int64_t>{1}) {
        return 4;
    }
    gert::InferDataTypeContext typeCtx;
    if (reg.inferDataType(&typeCtx) != ge::GRAPH_SUCCESS) return 5;
    for (auto t : typeCtx.types_) {
        if (t != ge::DT_INT32) return 6;
    }

    platform_ascendc::g_emuAivCores = static_cast<uint32_t>(aivCores);
    gert::TilingContext ctx;
    ctx.inputs_ = {MakeShape({n, 3}), MakeShape({s, 3, 3}), MakeShape({s, 3}), MakeShape({s + 1}), MakeShape({1}),
                   MakeShape({capacity})};
    if (reg.tiling(&ctx) != ge::GRAPH_SUCCESS) return 7;
    const uint32_t blocks = ctx.blockDim_;
    if (blocks == 0 || blocks > static_cast<uint32_t>(aivCores)) return 8;
    info[0] = blocks;
    info[1] = static_cast<int64_t>(ctx.workspace_[0]);
    info[2] = ctx.scheduleMode_;

    // exactly-sized device buffers
    std::vector<float> dPos(positions, positions + 3 * n);
    std::vector<float> dCell(cells, cells + 9 * s);
    std::vector<uint8_t> dPbc(pbc, pbc + 3 * s);
    std::vector<int32_t> dOff(offsets, offsets + s + 1);
    std::vector<float> dCut(1, cutoff);
    std::vector<int32_t> dCapacityLike(capacity, 0);  // never read by the kernel
    std::vector<int32_t> dI(capacity, 0x5a5a5a5a), dJ(capacity, 0x5a5a5a5a), dS(3 * capacity, 0x5a5a5a5a);
    std::vector<int32_t> dCount(1, 0x5a5a5a5a);
    std::vector<uint8_t> workspace(ctx.workspace_[0], 0xCD);
    std::vector<uint8_t> tiling(ctx.raw_.buf_.begin(), ctx.raw_.buf_.begin() + ctx.raw_.size_);

    std::barrier<> barrier(blocks);
    std::vector<uint64_t> syncCalls(blocks, 0);
    std::vector<std::thread> cores;
    for (uint32_t b = 0; b < blocks; ++b) {
        cores.emplace_back([&, b] {
            AscendC::g_emuCore.idx = b;
            AscendC::g_emuCore.num = blocks;
            AscendC::g_emuCore.barrier = &barrier;
            AscendC::g_emuCore.syncCalls = 0;
            neighbor_list(reinterpret_cast<GM_ADDR>(dPos.data()), reinterpret_cast<GM_ADDR>(dCell.data()),
                          dPbc.data(), reinterpret_cast<GM_ADDR>(dOff.data()), reinterpret_cast<GM_ADDR>(dCut.data()),
                          reinterpret_cast<GM_ADDR>(dCapacityLike.data()), reinterpret_cast<GM_ADDR>(dI.data()), reinterpret_cast<GM_ADDR>(dJ.data()),
                          reinterpret_cast<GM_ADDR>(dS.data()), reinterpret_cast<GM_ADDR>(dCount.data()),
                          workspace.data(), tiling.data());
            syncCalls[b] = AscendC::g_emuCore.syncCalls;
        });
    }
    for (auto& t : cores) t.join();
    info[3] = static_cast<int64_t>(syncCalls[0]);
    for (auto c : syncCalls) {
        if (c != syncCalls[0]) return 9;  // every core must reach the same number of SyncAll
    }
    if (capacity > 0) {
        std::memcpy(idxI, dI.data(), sizeof(int32_t) * capacity);
        std::memcpy(idxJ, dJ.data(), sizeof(int32_t) * capacity);
        std::memcpy(shifts, dS.data(), sizeof(int32_t) * 3 * capacity);
    }
    count[0] = dCount[0];
    return 0;
}
