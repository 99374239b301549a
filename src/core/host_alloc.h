// Host memory as Tensor::empty allocates it: 64-byte aligned; buffers of
// 4 MiB and more are 2 MiB aligned and advised onto transparent huge pages
// (weights, KV caches and the workspace are streamed by the kernels; on
// 4 KiB pages a stream misses the TLB at every page and the hardware
// prefetchers stop at every page boundary). Free with std::free.
#pragma once

#include <cstddef>

namespace mimo {
void* host_alloc(size_t bytes);
}
