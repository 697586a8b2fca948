// Run-time discovery of accelerator plugins, and the CPU backend's self-description.
#include <dlfcn.h>
#include <faiss/Index.h>
#include <omp.h>

#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <string>
#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "internal.h"

namespace salt {
namespace {

std::string own_folder() {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&own_folder), &info) == 0 || info.dli_fname == nullptr) return ".";
  std::string path = info.dli_fname;
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : path.substr(0, slash);
}

PluginState load_cuda_plugin() {
  PluginState st;
  const char* env = std::getenv("SALT_CUDA_PLUGIN");
  st.path = env && *env ? std::string(env) : own_folder() + "/salt_cuda.so";
  void* handle = dlopen(st.path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* err = dlerror();
    st.reason = std::string("could not open the CUDA plugin: ") + (err ? err : st.path.c_str());
    return st;
  }
  auto entry = reinterpret_cast<salt_plugin_entry_fn>(dlsym(handle, SALT_PLUGIN_ENTRY_SYMBOL));
  if (!entry) {
    st.reason = st.path + " does not export " SALT_PLUGIN_ENTRY_SYMBOL;
    return st;  // handle intentionally kept: unloading libraries that started threads is unsafe
  }
  const salt_plugin_v1* p = entry();
  if (!p || p->abi_version != SALT_PLUGIN_ABI_VERSION) {
    st.reason = st.path + " has plugin ABI version " + (p ? std::to_string(p->abi_version) : std::string("(null)")) +
                ", this addon needs " + std::to_string(SALT_PLUGIN_ABI_VERSION) +
                " (rebuild both from the same release)";
    return st;
  }
  char desc[4096];
  desc[0] = '\0';
  const salt_status s = p->describe(desc, sizeof desc);
  st.description = desc;
  if (s.code != SALT_OK) {
    st.reason = std::string("the CUDA plugin found no usable device: ") + s.message;
    return st;
  }
  st.plugin = p;
  return st;
}

}  // namespace

const PluginState& cuda_plugin() {
  static std::once_flag once;
  static PluginState state;
  std::call_once(once, [] {
    try {
      state = load_cuda_plugin();
    } catch (...) {
      state.reason = "the CUDA plugin could not be loaded (out of memory)";
    }
  });
  return state;
}

namespace {
std::string blas_note;  // what select_blas_kernels did, for cpu_info()
}

void lower_team_priority() {
#if defined(__linux__)
  // Each team thread once (OpenMP reuses them: after that, an empty region per call). The calling
  // thread (the team's master, e.g. a libuv pool thread shared with the application) keeps its
  // priority. Why: on a machine with few cores, the kernels' threads took the cores from the
  // application's event loop and from V8's garbage-collection helpers, whose collections then
  // blocked the event loop for tens of ms waiting for them (bench/README.md, event-loop stall).
#pragma omp parallel
  {
    thread_local bool lowered = false;
    if (omp_get_thread_num() > 0 && !lowered) {
      lowered = true;
      lower_thread_priority();
    }
  }
#endif
}

void lower_thread_priority() {
#if defined(__linux__)
  constexpr int kNice = 10;
  const id_t tid = static_cast<id_t>(syscall(SYS_gettid));  // a thread's own nice value on Linux
  errno = 0;
  const int now = getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && now < kNice) setpriority(PRIO_PROCESS, tid, kNice);
#endif
}

std::string select_blas_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    const char* user = std::getenv("OPENBLAS_CORETYPE");
    const char* core = openblas_get_corename();
    if ((user != nullptr && *user != '\0') || core == nullptr || std::string(core) != "Prescott" ||
        gotoblas_dynamic_init == nullptr || gotoblas_dynamic_quit == nullptr)
      return;
    __builtin_cpu_init();
    const char* pick = nullptr;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
      pick = "SkylakeX";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
      pick = "Haswell";
    if (pick == nullptr) return;
    // OpenBLAS reads the core type from the environment only: set it for the re-selection, then
    // remove it again so that nothing else in the process (or its children) sees it.
    if (setenv("OPENBLAS_CORETYPE", pick, 1) != 0) return;
    gotoblas_dynamic_quit();
    gotoblas_dynamic_init();
    unsetenv("OPENBLAS_CORETYPE");
    const char* now = openblas_get_corename();
    blas_note = std::string("; salt-transfer chose the ") + (now ? now : pick) +
                " kernels: this OpenBLAS did not recognise the CPU and fell back to Prescott";
#endif
  });
  return blas_note;
}

bool fix_malloc_mmap_threshold(int64_t bytes) {
#if defined(__GLIBC__)
  if (bytes < 0 || bytes > (int64_t(1) << 30)) return false;
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(bytes)) == 1;
#else
  (void)bytes;
  return false;
#endif
}

CpuInfo cpu_info() {
  CpuInfo info;
#ifdef FAISS_VERSION_MAJOR
  info.faiss = std::to_string(FAISS_VERSION_MAJOR) + "." + std::to_string(FAISS_VERSION_MINOR) + "." +
               std::to_string(FAISS_VERSION_PATCH);
#else
  info.faiss = "unknown";
#endif
  const char* cfg = openblas_get_config();
  const char* core = openblas_get_corename();
  info.blas = std::string("OpenBLAS ") + (cfg ? cfg : "") + (core ? std::string(" (core ") + core + ")" : "") +
              select_blas_kernels();
  info.max_threads = omp_get_num_procs();
  return info;
}

}  // namespace salt
