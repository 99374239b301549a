// Grouped GEMM for the MoE experts: rows of A are grouped by expert (each
// group contiguous, as moe.cu lays them out), and a tile list built on the
// device says which expert and which rows each 64-row tile covers, so one
// launch serves every expert without the host knowing the group sizes.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace mimo::cuda {

constexpr int kGroupTileM = 64;  // rows per tile; the tile list is built for this

struct GroupedGemm {
  const float* A = nullptr;        // fp32 activations
  int64_t lda = 0;
  const int32_t* a_rows = nullptr; // optional: tile row r reads A row a_rows[r] (gather)
  const void* W = nullptr;         // [E][N, K] F32, BF16 or FP8 E4M3
  bool bf16 = false;
  bool fp8 = false;                // W holds FP8 codes with per-row block scales S
  const float* S = nullptr;        // [E][N, lds]
  int64_t s_expert_stride = 0, lds = 0;
  int block = 0;
  int64_t w_expert_stride = 0;     // elements between experts
  int64_t N = 0, K = 0;
  const int32_t* tile_expert = nullptr;  // [max_tiles]
  const int32_t* tile_row0 = nullptr;    // [max_tiles]
  const int32_t* num_tiles = nullptr;    // [1]
  const int32_t* offsets = nullptr;      // [E + 1]: rows of expert e are [offsets[e], offsets[e + 1])
  int64_t max_tiles = 0;                 // host-known bound on *num_tiles (grid size)
  float* C = nullptr;                    // C[r, n] for the grouped rows r
  int64_t ldc = 0;
};

// C[r, :] = A[row(r), :] @ W[e(r)]^T. BF16 and FP8 weights run on tensor
// cores with the activations (and FP8 weights times their scales) rounded
// to bf16 (fp32 accumulation); F32 weights run a plain fp32 FMA kernel.
void grouped_gemm(const GroupedGemm& g, cudaStream_t s);

// The same product for few rows per expert (decode), on CUDA cores with
// fp32 activations, streaming each used expert's weights once (gemv.cu).
// Needs bf16 or FP8 weights, K % 8 == 0 and 16-byte aligned A rows and W
// (grouped_gemv_ok); reads the expert row ranges from g.offsets only.
constexpr int64_t kGroupedGemvMaxRows = 256;  // T * top_k up to which moe.cu uses it
bool grouped_gemv_ok(const GroupedGemm& g);
void grouped_gemv(const GroupedGemm& g, int num_experts, cudaStream_t s);

}  // namespace mimo::cuda
