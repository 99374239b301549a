// Host memory, 64-byte aligned, freed with std::free. With `huge`, buffers
// of 4 MiB and more are 2 MiB aligned and advised onto transparent huge
// pages: the loader puts weights there (decode streams them; on 4 KiB pages
// a stream misses the TLB at every page and the hardware prefetchers stop at
// every page boundary), and the bandwidth probe reads the same kind of
// memory, and so do the KV pools (Backend::alloc_streamed). Activations and
// workspace (Tensor::empty without `huge`) do not: with every big buffer
// 2 MiB aligned, prefill measured ~10-15% slower against the probed FMA peak
// (same offsets in different tensors share L2 sets).
#pragma once

#include <cstddef>

namespace mimo {
void* host_alloc(size_t bytes, bool huge);
}
