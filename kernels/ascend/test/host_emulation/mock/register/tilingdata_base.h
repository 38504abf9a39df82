// HOST EMULATION MOCK of the tiling-data macros (see ../kernel_operator.h for the caveats).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#define BEGIN_TILING_DATA_DEF(name) struct name {
#define TILING_DATA_FIELD_DEF(type, field)             \
    type field = 0;                                    \
    void set_##field(type v) { field = v; }            \
    type get_##field() const { return field; }
#define TILING_DATA_FIELD_DEF_ARR(type, n, field)      \
    type field[n] = {};                                \
    void set_##field(const type* v) { std::memcpy(field, v, sizeof(field)); }
#define END_TILING_DATA_DEF                                                   \
    void SaveToBuffer(void* p, size_t capacity) const                        \
    {                                                                         \
        if (capacity < sizeof(*this)) std::abort();                           \
        std::memcpy(p, this, sizeof(*this));                                  \
    }                                                                         \
    size_t GetDataSize() const { return sizeof(*this); }                     \
    }
#define REGISTER_TILING_DATA_CLASS(op, cls)
