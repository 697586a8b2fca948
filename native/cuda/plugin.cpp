// salt_cuda.so — the CUDA backend plugin. Exports salt_plugin_entry() (salt/plugin.h); the CPU addon
// opens this library with dlopen from its own folder (or $SALT_CUDA_PLUGIN) and routes backend
// 'cuda' here. Every entry validates its arguments with the core's shared checks, runs the kernel
// with out-of-memory retries (halving the tile budget), and returns a status; nothing aborts and no
// exception leaves the library.
#include <cstdio>
#include <cstring>
#include <string>

#include "cuda_common.h"
#include "salt/plugin.h"
#include "select.h"

namespace salt {
namespace cuda {
namespace {

// The smallest budget worth trying before reporting E_CUDA_OOM.
constexpr size_t kMinBudget = static_cast<size_t>(8) << 20;

std::string json_string(const char* s) {
  std::string out = "\"";
  for (const char* p = s; *p; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string version_string(int v) {  // CUDA encodes versions as 1000 * major + 10 * minor
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

void write_json(char* out, size_t cap, const std::string& s) {
  if (!out || cap == 0) return;
  const size_t n = s.size() < cap - 1 ? s.size() : cap - 1;
  std::memcpy(out, s.data(), n);
  out[n] = '\0';
}

// Runs a kernel: device selection and budget, then the attempt with OOM retries.
template <class F>
salt_status run(const char* kernel, F&& attempt) {
  size_t budget = 0;
  salt_status st = guarded_cuda(kernel, [&]() -> salt_status {
    select_device();
    budget = memory_budget();
    return ok_status();
  });
  if (st.code != SALT_OK) return st;
  return with_oom_retry(kernel, budget, kMinBudget, attempt);
}

salt_status describe(char* out, size_t cap) {
  return guarded_cuda("describe", [&]() -> salt_status {
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess || count <= 0) {
      const char* why = err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device found";
      cudaGetLastError();
      write_json(out, cap, std::string("{\"devices\":[],\"error\":") + json_string(why) + "}");
      return make_status(SALT_E_NO_CUDA, "cudaGetDeviceCount: %s", why);
    }
    int runtime = 0, driver = 0;
    cudaRuntimeGetVersion(&runtime);
    cudaDriverGetVersion(&driver);
    int cb[3] = {0, 0, 0}, cs[3] = {0, 0, 0};
    cublasGetProperty(MAJOR_VERSION, &cb[0]);
    cublasGetProperty(MINOR_VERSION, &cb[1]);
    cublasGetProperty(PATCH_LEVEL, &cb[2]);
    cusolverGetProperty(MAJOR_VERSION, &cs[0]);
    cusolverGetProperty(MINOR_VERSION, &cs[1]);
    cusolverGetProperty(PATCH_LEVEL, &cs[2]);
    std::string devices = "[";
    for (int d = 0; d < count; ++d) {
      cudaDeviceProp prop;
      std::memset(&prop, 0, sizeof prop);
      const cudaError_t e = cudaGetDeviceProperties(&prop, d);
      if (e != cudaSuccess) {
        cudaGetLastError();
        continue;
      }
      if (devices.size() > 1) devices += ",";
      devices += "{\"index\":" + std::to_string(d) + ",\"name\":" + json_string(prop.name) +
                 ",\"memoryBytes\":" + std::to_string(prop.totalGlobalMem) + ",\"computeCapability\":\"" +
                 std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                 "\",\"multiprocessors\":" + std::to_string(prop.multiProcessorCount) + "}";
    }
    devices += "]";
    const int dev = select_device();
    const cudaError_t img = probe_kernel_image();
    std::string json = "{\"devices\":" + devices + ",\"device\":" + std::to_string(dev) + ",\"cudaRuntime\":\"" +
                       version_string(runtime) + "\",\"cudaDriver\":\"" + version_string(driver) + "\",\"cublas\":\"" +
                       std::to_string(cb[0]) + "." + std::to_string(cb[1]) + "." + std::to_string(cb[2]) +
                       "\",\"cusolver\":\"" + std::to_string(cs[0]) + "." + std::to_string(cs[1]) + "." +
                       std::to_string(cs[2]) + "\",\"kernels\":" + json_string(SALT_CUDA_ARCHS) +
                       ",\"limits\":{\"topkMaxK\":" + std::to_string(kMaxK) +
                       ",\"solveMaxNeighbours\":" + std::to_string(kSolveMaxNeighbours) +
                       ",\"sparsemaxGpuMaxK\":" + std::to_string(kSparsemaxMaxSortK) + "}";
    if (img != cudaSuccess) {
      json += ",\"error\":" + json_string(cudaGetErrorString(img)) + "}";
      write_json(out, cap, json);
      return make_status(SALT_E_NO_CUDA, "device %d cannot run this plugin's kernels (built for %s): %s", dev,
                         SALT_CUDA_ARCHS, cudaGetErrorString(img));
    }
    write_json(out, cap, json + "}");
    return ok_status();
  });
}

salt_status entry_topk(const salt_topk_args* p) {
  if (!p) return make_status(SALT_E_ARGUMENT, "topk_cosine: null arguments");
  salt_status st = check_topk(*p);
  if (st.code != SALT_OK || p->n == 0) return st;
  return run("topk_cosine", [p](size_t budget) { topk_cosine(*p, budget); });
}

salt_status entry_sparsemax(const salt_sparsemax_args* p) {
  if (!p) return make_status(SALT_E_ARGUMENT, "sparsemax: null arguments");
  salt_status st = check_sparsemax(*p);
  if (st.code != SALT_OK || p->n == 0) return st;
  return run("sparsemax", [p](size_t budget) { sparsemax(*p, budget); });
}

salt_status entry_solve(const salt_solve_args* p) {
  if (!p) return make_status(SALT_E_ARGUMENT, "solve_neighbourhoods: null arguments");
  salt_status st = check_solve(*p);
  if (st.code != SALT_OK || p->n == 0) return st;
  return run("solve_neighbourhoods", [p](size_t budget) { solve_neighbourhoods(*p, budget); });
}

salt_status entry_apply(const salt_apply_args* p) {
  if (!p) return make_status(SALT_E_ARGUMENT, "apply_weights: null arguments");
  salt_status st = check_apply(*p);
  if (st.code != SALT_OK || p->n == 0) return st;
  return run("apply_weights", [p](size_t budget) { apply_weights(*p, budget); });
}

const salt_plugin_v1 kPlugin = {
    SALT_PLUGIN_ABI_VERSION, "cuda", describe, entry_topk, entry_sparsemax, entry_solve, entry_apply,
};

}  // namespace
}  // namespace cuda
}  // namespace salt

extern "C" __attribute__((visibility("default"))) const salt_plugin_v1* salt_plugin_entry(void) {
  return &salt::cuda::kPlugin;
}
