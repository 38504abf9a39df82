// HOST EMULATION MOCK of platform_ascendc (see ../../kernel_operator.h for the caveats).
#pragma once
#include <cstdint>

namespace platform_ascendc {
inline uint32_t g_emuAivCores = 40;  // set by the driver
class PlatformAscendC {
public:
    explicit PlatformAscendC(const void*) {}
    uint32_t GetCoreNumAiv() const { return g_emuAivCores; }
    uint32_t GetCoreNum() const { return g_emuAivCores; }
    uint32_t GetLibApiWorkSpaceSize() const { return 4096; }
};
}  // namespace platform_ascendc
