// HOST EMULATION MOCK of the op prototype / shape-inference / tiling-context API used by
// op_host/neighbor_list.cpp (see ../kernel_operator.h for the caveats). Only the calls that file
// makes exist here; the driver reaches the registered functions through ops::EmuRegistry.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace ge {
using graphStatus = uint32_t;
constexpr graphStatus GRAPH_SUCCESS = 0;
constexpr graphStatus GRAPH_FAILED = 0xFFFFFFFF;
enum DataType { DT_FLOAT, DT_INT32, DT_BOOL, DT_UNDEFINED };
enum Format { FORMAT_ND };
}  // namespace ge

namespace gert {
class Shape {
public:
    Shape() = default;
    Shape(std::initializer_list<int64_t> d) : dims_(d) {}
    size_t GetDimNum() const { return dims_.size(); }
    int64_t GetDim(size_t i) const { return i < dims_.size() ? dims_[i] : 0; }
    void SetDimNum(size_t n) { dims_.resize(n, 0); }
    void SetDim(size_t i, int64_t v) { dims_.at(i) = v; }
    int64_t GetShapeSize() const
    {
        int64_t s = 1;
        for (int64_t d : dims_) s *= d;
        return s;
    }
    std::vector<int64_t> dims_;
};
class StorageShape {
public:
    const Shape& GetStorageShape() const { return shape_; }
    Shape shape_;
};
class RuntimeAttrs {
public:
    template <typename T>
    const T* GetAttrPointer(size_t i) const { return i < ints_.size() ? &ints_[i] : nullptr; }
    std::vector<int64_t> ints_;
};
class TilingData {
public:
    void* GetData() { return buf_.data(); }
    size_t GetCapacity() const { return buf_.size(); }
    void SetDataSize(size_t n) { size_ = n; }
    std::vector<uint8_t> buf_ = std::vector<uint8_t>(64 * 1024);
    size_t size_ = 0;
};
class TilingContext {
public:
    const StorageShape* GetInputShape(size_t i) const { return i < inputs_.size() ? &inputs_[i] : nullptr; }
    const RuntimeAttrs* GetAttrs() const { return &attrs_; }
    const void* GetPlatformInfo() const { return nullptr; }
    ge::graphStatus SetBlockDim(uint32_t d) { blockDim_ = d; return ge::GRAPH_SUCCESS; }
    ge::graphStatus SetTilingKey(uint64_t k) { tilingKey_ = k; return ge::GRAPH_SUCCESS; }
    ge::graphStatus SetScheduleMode(uint32_t m) { scheduleMode_ = m; return ge::GRAPH_SUCCESS; }
    TilingData* GetRawTilingData() { return &raw_; }
    size_t* GetWorkspaceSizes(size_t n) { return n == 1 ? workspace_ : nullptr; }
    std::vector<StorageShape> inputs_;
    RuntimeAttrs attrs_;
    uint32_t blockDim_ = 0;
    uint64_t tilingKey_ = 0;
    uint32_t scheduleMode_ = 0;
    TilingData raw_;
    size_t workspace_[1] = {0};
};
class InferShapeContext {
public:
    const RuntimeAttrs* GetAttrs() const { return &attrs_; }
    const Shape* GetInputShape(size_t i) const { return i < inputs_.size() ? &inputs_[i] : nullptr; }
    std::vector<Shape> inputs_;
    Shape* GetOutputShape(size_t i) { return i < outputs_.size() ? &outputs_[i] : nullptr; }
    RuntimeAttrs attrs_;
    std::vector<Shape> outputs_ = std::vector<Shape>(4);
};
class InferDataTypeContext {
public:
    ge::graphStatus SetOutputDataType(size_t i, ge::DataType t)
    {
        if (i >= types_.size()) return ge::GRAPH_FAILED;
        types_[i] = t;
        return ge::GRAPH_SUCCESS;
    }
    std::vector<ge::DataType> types_ = std::vector<ge::DataType>(4, ge::DT_UNDEFINED);
};
}  // namespace gert

namespace ops {
enum ParamTypeValue { REQUIRED, OPTIONAL, DYNAMIC };
using InferShapeFn = ge::graphStatus (*)(gert::InferShapeContext*);
using InferDataTypeFn = ge::graphStatus (*)(gert::InferDataTypeContext*);
using TilingFn = ge::graphStatus (*)(gert::TilingContext*);

struct EmuRegistry {
    std::string name;
    std::vector<std::string> inputs, outputs, attrs, configs;
    InferShapeFn inferShape = nullptr;
    InferDataTypeFn inferDataType = nullptr;
    TilingFn tiling = nullptr;
    static EmuRegistry& Get()
    {
        static EmuRegistry r;
        return r;
    }
};

class OpParamDef {
public:
    OpParamDef& ParamType(ParamTypeValue) { return *this; }
    OpParamDef& DataType(std::initializer_list<ge::DataType>) { return *this; }
    OpParamDef& Format(std::initializer_list<ge::Format>) { return *this; }
    OpParamDef& UnknownShapeFormat(std::initializer_list<ge::Format>) { return *this; }
};
class OpAttrDef {
public:
    OpAttrDef& AttrType(ParamTypeValue) { return *this; }
    OpAttrDef& Int() { return *this; }
};
class OpAICoreDef {
public:
    OpAICoreDef& SetTiling(TilingFn f)
    {
        EmuRegistry::Get().tiling = f;
        return *this;
    }
    OpAICoreDef& AddConfig(const char* soc)
    {
        EmuRegistry::Get().configs.push_back(soc);
        return *this;
    }
};
class OpDef {
public:
    explicit OpDef(const char* name) { EmuRegistry::Get().name = name; }
    OpParamDef& Input(const char* n)
    {
        EmuRegistry::Get().inputs.push_back(n);
        params_.emplace_back();
        return params_.back();
    }
    OpParamDef& Output(const char* n)
    {
        EmuRegistry::Get().outputs.push_back(n);
        params_.emplace_back();
        return params_.back();
    }
    OpAttrDef& Attr(const char* n)
    {
        EmuRegistry::Get().attrs.push_back(n);
        return attr_;
    }
    OpDef& SetInferShape(InferShapeFn f)
    {
        EmuRegistry::Get().inferShape = f;
        return *this;
    }
    OpDef& SetInferDataType(InferDataTypeFn f)
    {
        EmuRegistry::Get().inferDataType = f;
        return *this;
    }
    OpAICoreDef& AICore() { return aicore_; }

private:
    std::vector<OpParamDef> params_ = std::vector<OpParamDef>();
    OpAttrDef attr_;
    OpAICoreDef aicore_;
};
}  // namespace ops

#define OP_ADD(name) static ops::name g_emuOp_##name(#name)
