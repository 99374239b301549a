// The one call that turns a model directory into a runnable Model.
#pragma once

#include <memory>
#include <string>

#include "loader/config.h"
#include "loader/weight_loader.h"
#include "model/model.h"

namespace mimo {

struct ModelLoadOptions {
  std::string dtype = "auto";  // auto | float32 | bfloat16 (auto keeps FP8 matrices as FP8)
  std::string quantization;    // "" | "fp8": the checkpoint must be FP8 (an error otherwise)
  SpecOverrides overrides;
  bool load_mtp = true;
  int num_threads = 0;  // threads converting weights; 0 = the compute pool (--model-loader-extra-config)
};

struct LoadedModel {
  std::unique_ptr<Model> model;
  DType weight_dtype = DType::F32;
  std::string path;
};

LoadedModel load_model(const std::string& path, Backend& backend, const ModelLoadOptions& opt = {});

}  // namespace mimo
