// Communication between ranks. The model calls these at the points where a
// tensor-, expert- or data-parallel run must combine partial results; the
// single-rank communicator makes them no-ops. A multi-GPU build supplies an
// NCCL/MPI implementation behind the same interface.
#pragma once

#include "core/tensor.h"

namespace mimo {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x = sum over ranks of x (after row-parallel projections and MoE experts).
  virtual void all_reduce_sum_(Tensor& x) = 0;
};

class SingleRank final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void all_reduce_sum_(Tensor&) override {}
};

}  // namespace mimo
