// HOST EMULATION MOCK of the small part of the Ascend C kernel API that op_kernel/neighbor_list.cpp
// uses. It is NOT the CANN header: signatures follow the public Ascend C documentation as we read
// it, semantics are simplified (DMA is a bounds-checked memcpy that completes at once, pipe events
// are no-ops, a core is a std::thread, SyncAll is a std::barrier). It lets the kernel's logic run
// on a CPU; it says nothing about whether the code compiles with bisheng or runs on an NPU.
#pragma once
#include <barrier>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "neighbor_list_tiling.h"  // the kernel side of CANN generates this struct; here we reuse the host one

#define __aicore__
#define __global__
#define __gm__
using GM_ADDR = uint8_t*;
using event_t = int32_t;

enum pipe_t { PIPE_S, PIPE_V, PIPE_MTE2, PIPE_MTE3, PIPE_ALL };

namespace AscendC {

[[noreturn]] inline void EmuFail(const char* what)
{
    std::fprintf(stderr, "host emulation: %s\n", what);
    std::abort();
}

enum class HardEvent { MTE2_S, S_MTE2, MTE3_S, S_MTE3, MTE2_MTE3, MTE3_MTE2, MTE3_V, V_MTE3, S_V, V_S, MTE2_V, V_MTE2 };
enum class TPosition { VECIN, VECOUT, VECCALC };
enum class CacheLine { SINGLE_CACHE_LINE, ENTIRE_DATA_CACHE };

constexpr uint64_t kEmuSysWorkspace = 4096;   // what GetLibApiWorkSpaceSize reports in the mock
constexpr uint64_t kEmuUbBytes = 192 * 1024;  // Atlas A2 vector core UB

struct EmuCore {
    int64_t idx = 0;
    int64_t num = 1;
    std::barrier<>* barrier = nullptr;
    uint64_t syncCalls = 0;
};
inline thread_local EmuCore g_emuCore;

inline int64_t GetBlockIdx() { return g_emuCore.idx; }
inline int64_t GetBlockNum() { return g_emuCore.num; }
template <bool isAIVOnly = true>
inline void SyncAll()
{
    ++g_emuCore.syncCalls;
    g_emuCore.barrier->arrive_and_wait();
}
template <pipe_t P>
inline void PipeBarrier() {}
template <HardEvent E>
inline void SetFlag(event_t) {}
template <HardEvent E>
inline void WaitFlag(event_t) {}

template <typename T>
class GlobalTensor {
public:
    void SetGlobalBuffer(__gm__ T* p, uint64_t n)
    {
        p_ = p;
        n_ = n;
    }
    T GetValue(uint64_t i) const
    {
        if (i >= n_) EmuFail("GlobalTensor::GetValue out of bounds");
        return p_[i];
    }
    void SetValue(uint64_t i, T v) const
    {
        if (i >= n_) EmuFail("GlobalTensor::SetValue out of bounds");
        p_[i] = v;
    }
    GlobalTensor operator[](uint64_t off) const
    {
        if (off > n_) EmuFail("GlobalTensor::operator[] out of bounds");
        GlobalTensor g;
        g.p_ = p_ + off;
        g.n_ = n_ - off;
        return g;
    }
    T* p_ = nullptr;
    uint64_t n_ = 0;
};

template <typename T>
class LocalTensor {
public:
    T GetValue(uint32_t i) const
    {
        if (i >= n_) EmuFail("LocalTensor::GetValue out of bounds");
        return p_[i];
    }
    void SetValue(uint32_t i, T v) const
    {
        if (i >= n_) EmuFail("LocalTensor::SetValue out of bounds");
        p_[i] = v;
    }
    T* p_ = nullptr;
    uint64_t n_ = 0;
};

class TPipe;
inline thread_local TPipe* g_emuPipe = nullptr;
inline TPipe* GetTPipePtr() { return g_emuPipe; }

template <TPosition P>
class TBuf {
public:
    template <typename T>
    LocalTensor<T> Get()
    {
        LocalTensor<T> t;
        t.p_ = reinterpret_cast<T*>(mem_.data());
        t.n_ = mem_.size() / sizeof(T);
        return t;
    }
    std::vector<uint8_t> mem_;
};

class TPipe {
public:
    TPipe() { g_emuPipe = this; }
    ~TPipe() { g_emuPipe = nullptr; }
    template <TPosition P>
    void InitBuffer(TBuf<P>& b, uint32_t bytes)
    {
        if (bytes % 32 != 0) EmuFail("TBuf size not a multiple of 32 bytes");
        used_ += bytes;
        if (used_ > kEmuUbBytes) EmuFail("UB overcommitted");
        b.mem_.assign(bytes, 0xAB);
    }
    int32_t FetchEventID(HardEvent) { return 0; }
    uint64_t used_ = 0;
};

struct DataCopyExtParams {
    uint16_t blockCount = 0;
    uint32_t blockLen = 0;
    uint32_t srcStride = 0;
    uint32_t dstStride = 0;
    uint32_t rsv = 0;
};
template <typename T>
struct DataCopyPadExtParams {
    bool isPad = false;
    uint8_t leftPadding = 0;
    uint8_t rightPadding = 0;
    T paddingValue = 0;
};

template <typename T>
void DataCopyPad(const LocalTensor<T>& dst, const GlobalTensor<T>& src, const DataCopyExtParams& p,
                 const DataCopyPadExtParams<T>&)
{
    if (p.blockCount != 1 || p.blockLen == 0 || p.blockLen % sizeof(T) != 0) EmuFail("DataCopyPad GM->UB params");
    const uint64_t n = p.blockLen / sizeof(T);
    if (n > src.n_ || n > dst.n_) EmuFail("DataCopyPad GM->UB out of bounds");
    std::memcpy(dst.p_, src.p_, p.blockLen);
}

template <typename T>
void DataCopyPad(const GlobalTensor<T>& dst, const LocalTensor<T>& src, const DataCopyExtParams& p)
{
    if (p.blockCount != 1 || p.blockLen == 0 || p.blockLen % sizeof(T) != 0) EmuFail("DataCopyPad UB->GM params");
    const uint64_t n = p.blockLen / sizeof(T);
    if (n > src.n_ || n > dst.n_) EmuFail("DataCopyPad UB->GM out of bounds");
    std::memcpy(dst.p_, src.p_, p.blockLen);
}

template <typename T>
void Duplicate(const LocalTensor<T>& dst, const T& value, const int32_t& count)
{
    if (count < 0 || static_cast<uint64_t>(count) > dst.n_) EmuFail("Duplicate out of bounds");
    for (int32_t i = 0; i < count; ++i) dst.p_[i] = value;
}

template <typename T, CacheLine L>
void DataCacheCleanAndInvalid(const GlobalTensor<T>&) {}

inline GM_ADDR GetUserWorkspace(GM_ADDR workspace) { return workspace + kEmuSysWorkspace; }

}  // namespace AscendC

#define GET_TILING_DATA(name, ptr)            \
    optiling::NeighborListTilingData name;    \
    std::memcpy(&name, (ptr), sizeof(name))
