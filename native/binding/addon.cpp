// The Node binding: converts JS values to the core's argument structs, runs kernels on the libuv
// thread pool and maps statuses to JS errors with a stable `.code`. Validation of types and shapes
// for users happens in lib/ (TypeScript); the checks here only keep a misuse of the raw binding from
// reading or writing out of bounds.
#include <napi.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "salt/core.h"
#include "salt/json_vocab.h"

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace {

using Job = std::function<salt_status()>;

Napi::Error status_error(Napi::Env env, const salt_status& s) {
  Napi::Error err = Napi::Error::New(env, s.message);
  err.Set("code", Napi::String::New(env, salt::code_name(s.code)));
  return err;
}

Napi::Error coded_error(Napi::Env env, const char* code, const std::string& message, bool type = false) {
  Napi::Error err = type ? Napi::TypeError::New(env, message) : Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

// Runs a kernel off the JS thread. Every JS object the kernel reads or writes is held by a
// persistent reference until the promise settles, so the garbage collector cannot free it.
class KernelWorker : public Napi::AsyncWorker {
 public:
  KernelWorker(Napi::Env env, Job job, std::vector<std::pair<std::string, Napi::Value>> outputs)
      : Napi::AsyncWorker(env, "salt-transfer:kernel"),
        deferred_(Napi::Promise::Deferred::New(env)),
        job_(std::move(job)) {
    for (auto& o : outputs) {
      out_names_.push_back(o.first);
      out_refs_.push_back(Napi::Persistent(o.second.As<Napi::Object>()));
    }
  }
  void Pin(const Napi::Value& v) {
    if (v.IsObject()) in_refs_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  void PinKeys(const Napi::Object& obj, std::initializer_list<const char*> keys) {
    for (const char* key : keys) Pin(obj.Get(key));
  }
  void SetJob(Job job) { job_ = std::move(job); }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { status_ = job_(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (status_.code != SALT_OK) {
      deferred_.Reject(status_error(env, status_).Value());
      return;
    }
    Napi::Object result = Napi::Object::New(env);
    for (size_t i = 0; i < out_refs_.size(); ++i) result.Set(out_names_[i], out_refs_[i].Value());
    deferred_.Resolve(result);
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Job job_;
  salt_status status_ = salt::ok_status();
  std::vector<std::string> out_names_;
  std::vector<Napi::ObjectReference> out_refs_;
  std::vector<Napi::ObjectReference> in_refs_;
};

// The typed-array class the binding accepts for each element type.
template <class T>
struct TypedArrayKind;
template <>
struct TypedArrayKind<float> {
  static constexpr napi_typedarray_type type = napi_float32_array;
  static constexpr const char* name = "Float32Array";
};
template <>
struct TypedArrayKind<double> {
  static constexpr napi_typedarray_type type = napi_float64_array;
  static constexpr const char* name = "Float64Array";
};
template <>
struct TypedArrayKind<int32_t> {
  static constexpr napi_typedarray_type type = napi_int32_array;
  static constexpr const char* name = "Int32Array";
};
template <>
struct TypedArrayKind<uint8_t> {
  static constexpr napi_typedarray_type type = napi_uint8_array;
  static constexpr const char* name = "Uint8Array";
};
template <>
struct TypedArrayKind<uint16_t> {
  static constexpr napi_typedarray_type type = napi_uint16_array;
  static constexpr const char* name = "Uint16Array";
};

// Reads fields of the argument object, throwing a JS error (caught by the caller) on misuse.
class Args {
 public:
  Args(const Napi::CallbackInfo& info) : env_(info.Env()) {
    if (info.Length() < 1 || !info[0].IsObject())
      throw coded_error(env_, "E_TYPE", "expected an argument object", true);
    obj_ = info[0].As<Napi::Object>();
  }
  int64_t Int(const char* key, int64_t fallback = INT64_MIN) const {
    Napi::Value v = obj_.Get(key);
    if (v.IsUndefined() && fallback != INT64_MIN) return fallback;
    if (!v.IsNumber()) throw coded_error(env_, "E_TYPE", std::string(key) + " must be a number", true);
    // Every integer argument is a size, a count or a thread number: bounding them to int32 keeps the
    // products of sizes used for the length checks below far from 64-bit overflow.
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 2147483647.0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw coded_error(env_, "E_ARGUMENT", std::string(key) + " must be an integer in [0, 2^31 - 1]");
    return static_cast<int64_t>(d);
  }
  // A file offset or byte count: up to 2^53 (a number JavaScript holds exactly). Never multiplied
  // with another size, so the int32 bound of Int() is not needed.
  int64_t Offset(const char* key) const {
    Napi::Value v = obj_.Get(key);
    if (!v.IsNumber()) throw coded_error(env_, "E_TYPE", std::string(key) + " must be a number", true);
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= 0 && d <= 9007199254740991.0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw coded_error(env_, "E_ARGUMENT", std::string(key) + " must be an integer in [0, 2^53 - 1]");
    return static_cast<int64_t>(d);
  }
  double Double(const char* key, double fallback) const {
    Napi::Value v = obj_.Get(key);
    if (v.IsUndefined()) return fallback;
    if (!v.IsNumber()) throw coded_error(env_, "E_TYPE", std::string(key) + " must be a number", true);
    return v.As<Napi::Number>().DoubleValue();
  }
  std::string Str(const char* key, const char* fallback) const {
    Napi::Value v = obj_.Get(key);
    if (v.IsUndefined()) return fallback;
    if (!v.IsString()) throw coded_error(env_, "E_TYPE", std::string(key) + " must be a string", true);
    return v.As<Napi::String>().Utf8Value();
  }
  template <class T>
  T* Array(const char* key, int64_t expected, bool optional = false) const {
    Napi::Value v = obj_.Get(key);
    if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
    const napi_typedarray_type want = TypedArrayKind<T>::type;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != want)
      throw coded_error(env_, "E_TYPE", std::string(key) + " must be a " + TypedArrayKind<T>::name, true);
    auto arr = v.As<Napi::TypedArrayOf<T>>();
    if (static_cast<int64_t>(arr.ElementLength()) != expected)
      throw coded_error(env_, "E_SHAPE",
                        std::string(key) + " has length " + std::to_string(arr.ElementLength()) + ", expected " +
                            std::to_string(expected));
    return arr.Data();
  }
  Napi::Env env_;
  Napi::Object obj_;
};

const salt_plugin_v1* pick_backend(Napi::Env env, const std::string& name) {
  if (name == "cpu") return nullptr;
  if (name == "cuda") {
    const salt::PluginState& p = salt::cuda_plugin();
    if (!p.plugin) throw coded_error(env, "E_NO_CUDA", "the CUDA backend is not available: " + p.reason);
    return p.plugin;
  }
  throw coded_error(env, "E_ARGUMENT", "backend must be \"cpu\" or \"cuda\", got \"" + name + "\"");
}

Napi::Value Queue(KernelWorker* w, Job job) {
  w->SetJob(std::move(job));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Memory for large results, released on a short-lived thread of its own when the garbage collector
// drops the array. Freeing gigabytes on the JavaScript thread (inside the collector) took ~0.2 s per
// GiB; one munmap of the whole range on another thread still blocked the JavaScript thread for as
// long, since the kernel holds the process's address-space lock while it unmaps, and every page fault
// waits for it. So the pages are dropped in 32 MiB slices (MADV_DONTNEED needs that lock only shared)
// before the then-cheap munmap.
#if defined(__linux__)
void* map_zeroed(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}
// Drops the pages of [p, p + bytes) (page-aligned) in 32 MiB slices: they read as zeros afterwards.
void drop_pages(void* p, size_t bytes) {
  constexpr size_t kSlice = size_t(32) << 20;
  char* c = static_cast<char*>(p);
  for (size_t off = 0; off < bytes; off += kSlice) madvise(c + off, std::min(kSlice, bytes - off), MADV_DONTNEED);
}
size_t page_bytes() { return static_cast<size_t>(sysconf(_SC_PAGESIZE)); }
constexpr bool kCanDropPages = true;
void unmap_in_slices(void* p, size_t bytes) {
  drop_pages(p, bytes);
  munmap(p, bytes);
}
#else
void* map_zeroed(size_t bytes) { return std::calloc(bytes, 1); }
void drop_pages(void*, size_t) {}
size_t page_bytes() { return 4096; }
constexpr bool kCanDropPages = false;
void unmap_in_slices(void* p, size_t) { std::free(p); }
#endif

// A zero-filled ArrayBuffer of `bytes` freed as above. Throws E_NO_MEMORY when no memory is left, and
// the Napi::Error of ArrayBuffer::New where the runtime forbids external buffers.
Napi::ArrayBuffer background_freed_buffer(Napi::Env env, size_t bytes) {
  void* p = map_zeroed(bytes);
  if (p == nullptr) throw coded_error(env, "E_NO_MEMORY", "out of host memory");
  try {
    return Napi::ArrayBuffer::New(
        env, p, bytes,
        [](Napi::Env, void* data, size_t* len) {
          const size_t b = *len;
          delete len;
          try {
            std::thread([data, b]() { unmap_in_slices(data, b); }).detach();
          } catch (...) {
            unmap_in_slices(data, b);  // no thread could be started: release here
          }
        },
        new size_t(bytes));
  } catch (...) {
    unmap_in_slices(p, bytes);
    throw;
  }
}

// Outputs of this many bytes and more get background-freed memory (above); smaller ones V8's.
constexpr size_t kBackgroundFreeBytes = size_t(16) << 20;

// A new zero-filled typed array of `count` elements for a native result.
template <class T>
Napi::TypedArrayOf<T> alloc(Napi::Env env, int64_t count) {
  const size_t n = static_cast<size_t>(count);
  if (n * sizeof(T) >= kBackgroundFreeBytes) {
    try {
      return Napi::TypedArrayOf<T>::New(env, n, background_freed_buffer(env, n * sizeof(T)), 0);
    } catch (const Napi::Error& e) {
      if (e.Get("code").StrictEquals(Napi::String::New(env, "E_NO_MEMORY"))) throw;
      // External buffers not allowed here: V8's own memory below.
    }
  }
  return Napi::TypedArrayOf<T>::New(env, n);
}

// allocFloat32(length) / allocFloat64(length): a zero-filled array in background-freed memory, for
// the large arrays the TypeScript layer allocates itself (it falls back to `new Float32Array` when
// this throws anything but E_NO_MEMORY).
template <class T>
Napi::Value AllocFloat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() < 1 || !info[0].IsNumber()) throw coded_error(env, "E_TYPE", "length must be a number", true);
    const double d = info[0].As<Napi::Number>().DoubleValue();
    if (!(d >= 1 && d <= 4294967296.0) || d != static_cast<double>(static_cast<int64_t>(d)))
      throw coded_error(env, "E_ARGUMENT", "length must be an integer in [1, 2^32]");
    const size_t n = static_cast<size_t>(d);
    return Napi::TypedArrayOf<T>::New(env, n, background_freed_buffer(env, n * sizeof(T)), 0);
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// Wraps a binding body so thrown Napi errors become a rejected promise rather than a throw.
Napi::Value as_promise(const Napi::CallbackInfo& info, const std::function<Napi::Value()>& body) {
  try {
    return body();
  } catch (const Napi::Error& e) {
    auto d = Napi::Promise::Deferred::New(info.Env());
    d.Reject(e.Value());
    return d.Promise();
  } catch (const std::bad_alloc&) {
    auto d = Napi::Promise::Deferred::New(info.Env());
    d.Reject(coded_error(info.Env(), "E_NO_MEMORY", "out of host memory").Value());
    return d.Promise();
  } catch (const std::exception& e) {
    auto d = Napi::Promise::Deferred::New(info.Env());
    d.Reject(coded_error(info.Env(), "E_INTERNAL", std::string("internal error: ") + e.what()).Value());
    return d.Promise();
  }
}

Napi::Value TopkCosine(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_topk_args a{};
    a.n = in.Int("n");
    a.m = in.Int("m");
    a.d = in.Int("d");
    a.k = in.Int("k");
    if (a.n < 0 || a.m < 1 || a.d < 1 || a.k < 1 || a.k > a.m)
      throw coded_error(env, "E_ARGUMENT", "invalid shape: need n >= 0, m >= 1, d >= 1, 1 <= k <= m");
    a.tile_rows = in.Int("tileRows", 0);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    a.precision = in.Str("precision", "fp32") == "tf32" ? 1 : 0;
    const salt_plugin_v1* plugin = pick_backend(env, in.Str("backend", "cpu"));
    a.queries = in.Array<float>("queries", a.n * a.d);
    a.base = in.Array<float>("base", a.m * a.d);
    auto idx = alloc<int32_t>(env, a.n * a.k);
    auto sc = alloc<float>(env, a.n * a.k);
    auto* w = new KernelWorker(env, nullptr, {{"indices", idx}, {"scores", sc}});
    w->PinKeys(in.obj_, {"queries", "base"});
    a.out_indices = idx.Data();
    a.out_scores = sc.Data();
    auto job = [a, plugin]() { return plugin ? plugin->topk_cosine(&a) : salt::cpu::topk_cosine(a); };
    return Queue(w, job);
  });
}

// Reads sparsemax arguments and allocates its outputs (shared by the async and sync entries).
struct SparsemaxCall {
  salt_sparsemax_args a{};
  Napi::TypedArrayOf<float> weights;
  Napi::TypedArrayOf<int32_t> support;
};

SparsemaxCall read_sparsemax(Napi::Env env, const Args& in) {
  SparsemaxCall c;
  c.a.n = in.Int("n");
  c.a.K = in.Int("K");
  if (c.a.n < 0 || c.a.K < 1) throw coded_error(env, "E_ARGUMENT", "invalid shape: need n >= 0, K >= 1");
  c.a.threads = static_cast<int32_t>(in.Int("threads", 0));
  c.a.scores = in.Array<float>("scores", c.a.n * c.a.K);
  c.weights = alloc<float>(env, c.a.n * c.a.K);
  c.support = alloc<int32_t>(env, c.a.n);
  c.a.out_weights = c.weights.Data();
  c.a.out_support = c.support.Data();
  return c;
}

Napi::Value Sparsemax(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    const salt_plugin_v1* plugin = pick_backend(env, in.Str("backend", "cpu"));
    SparsemaxCall c = read_sparsemax(env, in);
    auto* w = new KernelWorker(env, nullptr, {{"weights", c.weights}, {"support", c.support}});
    w->PinKeys(in.obj_, {"scores"});
    const salt_sparsemax_args a = c.a;
    return Queue(w, [a, plugin]() { return plugin ? plugin->sparsemax(&a) : salt::cpu::sparsemax(a); });
  });
}

// Synchronous sparsemax (cheap: O(n K log K)); CPU only.
Napi::Value SparsemaxSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    Args in(info);
    SparsemaxCall c = read_sparsemax(env, in);
    const salt_status s = salt::cpu::sparsemax(c.a);
    if (s.code != SALT_OK) throw status_error(env, s);
    Napi::Object r = Napi::Object::New(env);
    r.Set("weights", c.weights);
    r.Set("support", c.support);
    return r;
  } catch (const Napi::Error& e) {
    e.ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// The neighbour lists and their per-entry weights are copied (they are small next to the matrices):
// the core validates them once, then reads them again, and a caller that changed them in between
// must get wrong numbers, never an out-of-bounds write.
struct OwnedLists {
  std::vector<int32_t> offsets, indices;
  std::vector<float> weights;
};

std::shared_ptr<OwnedLists> own_lists(int64_t n, int64_t nnz, const int32_t* offsets, const int32_t* indices,
                                      const float* weights) {
  auto o = std::make_shared<OwnedLists>();
  o->offsets.assign(offsets, offsets + n + 1);
  o->indices.assign(indices, indices + nnz);
  if (weights) o->weights.assign(weights, weights + nnz);
  return o;
}

// Reads the CSR lists shared by solveNeighbourhoods and applyWeights; returns offsets[n].
int64_t read_csr(Napi::Env env, const Args& in, int64_t n, const int32_t** offsets, const int32_t** indices) {
  *offsets = in.Array<int32_t>("offsets", n + 1);
  if ((*offsets)[0] != 0) throw coded_error(env, "E_ARGUMENT", "offsets[0] must be 0");
  const int64_t nnz = (*offsets)[n];
  if (nnz < 0) throw coded_error(env, "E_ARGUMENT", "offsets[n] must be >= 0");
  *indices = in.Array<int32_t>("indices", nnz);
  return nnz;
}

Napi::Value SolveNeighbourhoods(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_solve_args a{};
    a.n = in.Int("n");
    a.m = in.Int("m");
    a.ht = in.Int("ht");
    a.hs = in.Int("hs");
    if (a.n < 0 || a.m < 1 || a.ht < 1 || a.hs < 1)
      throw coded_error(env, "E_ARGUMENT", "invalid shape: need n >= 0, m, ht, hs >= 1");
    a.lambda = in.Double("lambda", 0);
    a.rcond = in.Double("rcond", -1);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    const bool want_coefs = in.obj_.Get("returnCoefficients").ToBoolean();
    const salt_plugin_v1* plugin = pick_backend(env, in.Str("backend", "cpu"));
    const int64_t nnz = read_csr(env, in, a.n, &a.offsets, &a.indices);
    a.prior = in.Array<float>("prior", nnz, true);
    a.queries = in.Array<float>("queries", a.n * a.ht);
    a.anchors_plm = in.Array<float>("anchorsPlm", a.m * a.ht);
    a.anchors_src = in.Array<float>("anchorsSrc", a.m * a.hs);
    auto out = alloc<float>(env, a.n * a.hs);
    auto res = alloc<float>(env, a.n);
    auto cn = alloc<float>(env, a.n);
    std::vector<std::pair<std::string, Napi::Value>> outs = {{"out", out}, {"residual", res}, {"coefNorm", cn}};
    a.out = out.Data();
    a.out_residual = res.Data();
    a.out_coef_norm = cn.Data();
    if (want_coefs) {
      auto co = alloc<float>(env, nnz);
      a.out_coefficients = co.Data();
      outs.push_back({"coefficients", co});
    }
    auto lists = own_lists(a.n, nnz, a.offsets, a.indices, a.prior);
    a.offsets = lists->offsets.data();
    a.indices = lists->indices.data();
    if (a.prior) a.prior = lists->weights.data();
    auto* w = new KernelWorker(env, nullptr, outs);
    w->PinKeys(in.obj_, {"queries", "anchorsPlm", "anchorsSrc"});
    return Queue(w, [a, plugin, lists]() {
      return plugin ? plugin->solve_neighbourhoods(&a) : salt::cpu::solve_neighbourhoods(a);
    });
  });
}

Napi::Value ApplyWeights(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_apply_args a{};
    a.n = in.Int("n");
    a.m = in.Int("m");
    a.hs = in.Int("hs");
    if (a.n < 0 || a.m < 1 || a.hs < 1) throw coded_error(env, "E_ARGUMENT", "invalid shape: need n >= 0, m, hs >= 1");
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    const salt_plugin_v1* plugin = pick_backend(env, in.Str("backend", "cpu"));
    const int64_t nnz = read_csr(env, in, a.n, &a.offsets, &a.indices);
    a.weights = in.Array<float>("weights", nnz);
    a.anchors_src = in.Array<float>("anchorsSrc", a.m * a.hs);
    auto out = alloc<float>(env, a.n * a.hs);
    a.out = out.Data();
    auto lists = own_lists(a.n, nnz, a.offsets, a.indices, a.weights);
    a.offsets = lists->offsets.data();
    a.indices = lists->indices.data();
    a.weights = lists->weights.data();
    auto* w = new KernelWorker(env, nullptr, {{"out", out}});
    w->PinKeys(in.obj_, {"anchorsSrc"});
    return Queue(w, [a, plugin, lists]() { return plugin ? plugin->apply_weights(&a) : salt::cpu::apply_weights(a); });
  });
}

// ---- whole-matrix passes (salt/matrix_ops.h), CPU only

// Reads { data: Float32Array, rows, cols } of a matrix argument.
salt_matrix_view read_view(Napi::Env env, const Args& in) {
  salt_matrix_view m{};
  m.rows = in.Int("rows");
  m.cols = in.Int("cols");
  if (m.cols < 1) throw coded_error(env, "E_ARGUMENT", "invalid shape: need rows >= 0, cols >= 1");
  m.data = in.Array<float>("data", m.rows * m.cols);
  return m;
}

Napi::Value FindNonFinite(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_nonfinite_args a{};
    a.m = read_view(env, in);
    a.row_mask = in.Array<uint8_t>("mask", a.m.rows, true);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto index = alloc<double>(env, 1);
    auto* w = new KernelWorker(env, nullptr, {{"index", index}});
    w->PinKeys(in.obj_, {"data", "mask"});
    // The result is written to a slot the worker owns and copied into the (pinned) Float64Array
    // before the promise settles: an int64 does not fit a JS number's view of memory directly.
    auto slot = std::make_shared<int64_t>(-1);
    a.out_index = slot.get();
    double* dst = index.Data();
    return Queue(w, [a, slot, dst]() {
      const salt_status s = salt::cpu::find_nonfinite(a);
      *dst = static_cast<double>(*slot);
      return s;
    });
  });
}

Napi::Value ColumnMeanStd(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_column_stats_args a{};
    a.m = read_view(env, in);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto mean = alloc<double>(env, a.m.cols);
    auto std_ = alloc<double>(env, a.m.cols);
    a.out_mean = mean.Data();
    a.out_std = std_.Data();
    std::vector<std::pair<std::string, Napi::Value>> outs = {{"mean", mean}, {"std", std_}};
    // { norms: true }: the row norms from the same pass.
    a.want_norms = in.obj_.Get("norms").ToBoolean().Value() ? 1 : 0;
    if (a.want_norms) {
      auto norms = alloc<double>(env, a.m.rows);
      a.out_norms = norms.Data();
      outs.emplace_back("norms", norms);
    }
    auto* w = new KernelWorker(env, nullptr, outs);
    w->PinKeys(in.obj_, {"data"});
    return Queue(w, [a]() { return salt::cpu::column_mean_std(a); });
  });
}

Napi::Value RowNorms(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_row_norms_args a{};
    a.m = read_view(env, in);
    a.n = in.Int("n");
    a.ids = in.Array<int32_t>("ids", a.n, true);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto out = alloc<double>(env, a.n);
    a.out = out.Data();
    // The ids are copied: the core checks their range, then reads them again.
    auto ids = std::make_shared<std::vector<int32_t>>();
    if (a.ids) {
      ids->assign(a.ids, a.ids + a.n);
      a.ids = ids->data();
    }
    auto* w = new KernelWorker(env, nullptr, {{"norms", out}});
    w->PinKeys(in.obj_, {"data"});
    return Queue(w, [a, ids]() { return salt::cpu::row_norms(a); });
  });
}

Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_gather_args a{};
    a.m = read_view(env, in);
    a.n = in.Int("n");
    auto ids = std::make_shared<std::vector<int32_t>>();
    const int32_t* given = in.Array<int32_t>("ids", a.n);
    ids->assign(given, given + a.n);
    a.ids = ids->data();
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto out = alloc<float>(env, a.n * a.m.cols);
    a.out = out.Data();
    auto* w = new KernelWorker(env, nullptr, {{"out", out}});
    w->PinKeys(in.obj_, {"data"});
    return Queue(w, [a, ids]() { return salt::cpu::gather_rows(a); });
  });
}

// { data, rows, cols, ids, n, out, threads? }: out row i = row ids[i] where ids[i] >= 0, in place.
Napi::Value CopyRows(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_copy_rows_args a{};
    a.m = read_view(env, in);
    a.n = in.Int("n");
    a.ids = in.Array<int32_t>("ids", a.n);
    a.out = in.Array<float>("out", a.n * a.m.cols);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto* w = new KernelWorker(env, nullptr, {{"out", in.obj_.Get("out")}});
    w->PinKeys(in.obj_, {"data", "ids"});
    return Queue(w, [a]() { return salt::cpu::copy_rows(a); });
  });
}

// releasePages({ data: Float32Array }): gives the whole pages inside `data` back to the system, off the
// calling thread (memory the caller will not read again; they read as zeros if it does). For the large
// SharedArrayBuffer matrices of the pipelines, which V8 frees only at its next full collection. The
// array stays referenced until the pages are dropped, so its memory cannot be unmapped and reused
// meanwhile. Resolves to { bytes } (how many bytes were dropped; 0 where the system has no madvise).
Napi::Value ReleasePages(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    Napi::Value v = in.obj_.Get("data");
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw coded_error(env, "E_TYPE", "data must be a Float32Array", true);
    auto arr = v.As<Napi::Float32Array>();
    const auto begin = reinterpret_cast<uintptr_t>(arr.Data());
    const auto end = begin + arr.ByteLength();
    const uintptr_t page = page_bytes();
    const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
    const size_t bytes = kCanDropPages && last > first ? last - first : 0;
    Napi::Object result = Napi::Object::New(env);
    result.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes)));
    auto* w = new KernelWorker(env, nullptr, {{"result", result}});
    w->Pin(v);
    return Queue(w, [first, bytes]() {
      if (bytes > 0) drop_pages(reinterpret_cast<void*>(first), bytes);
      return salt::ok_status();
    });
  });
}

int32_t half_kind(Napi::Env env, const std::string& dtype) {
  if (dtype == "F16") return SALT_HALF_F16;
  if (dtype == "BF16") return SALT_HALF_BF16;
  throw coded_error(env, "E_ARGUMENT", "dtype must be \"F16\" or \"BF16\", got \"" + dtype + "\"");
}

// { src: Float32Array, out: Uint16Array (same length), dtype }: writes into the caller's `out`.
Napi::Value EncodeFloats(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_convert_args a{};
    a.kind = half_kind(env, in.Str("dtype", ""));
    a.n = in.Int("n");
    a.f32 = in.Array<float>("src", a.n);
    a.out_h = in.Array<uint16_t>("out", a.n);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto* w = new KernelWorker(env, nullptr, {{"out", in.obj_.Get("out")}});
    w->PinKeys(in.obj_, {"src"});
    return Queue(w, [a]() { return salt::cpu::encode_floats(a); });
  });
}

// { src: Uint16Array, out: Float32Array (same length), dtype }: writes into the caller's `out`.
Napi::Value DecodeFloats(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_convert_args a{};
    a.kind = half_kind(env, in.Str("dtype", ""));
    a.n = in.Int("n");
    a.h = in.Array<uint16_t>("src", a.n);
    a.out_f32 = in.Array<float>("out", a.n);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto* w = new KernelWorker(env, nullptr, {{"out", in.obj_.Get("out")}});
    w->PinKeys(in.obj_, {"src"});
    return Queue(w, [a]() { return salt::cpu::decode_floats(a); });
  });
}

// { src: Float32Array, out: Float64Array (same length) }: exact widening into the caller's `out`.
Napi::Value WidenFloats(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_precision_args a{};
    a.n = in.Int("n");
    a.f32 = in.Array<float>("src", a.n);
    a.out_f64 = in.Array<double>("out", a.n);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto* w = new KernelWorker(env, nullptr, {{"out", in.obj_.Get("out")}});
    w->PinKeys(in.obj_, {"src"});
    return Queue(w, [a]() { return salt::cpu::widen_floats(a); });
  });
}

// { src: Float64Array, out: Float32Array (same length) }: rounding into the caller's `out`.
Napi::Value NarrowFloats(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_precision_args a{};
    a.n = in.Int("n");
    a.f64 = in.Array<double>("src", a.n);
    a.out_f32 = in.Array<float>("out", a.n);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    auto* w = new KernelWorker(env, nullptr, {{"out", in.obj_.Get("out")}});
    w->PinKeys(in.obj_, {"src"});
    return Queue(w, [a]() { return salt::cpu::narrow_floats(a); });
  });
}

// { values: Float64Array, n }: sorts the caller's array in place.
Napi::Value SortDoubles(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_sort_args a{};
    a.n = in.Int("n");
    a.values = in.Array<double>("values", a.n);
    auto* w = new KernelWorker(env, nullptr, {{"values", in.obj_.Get("values")}});
    return Queue(w, [a]() { return salt::cpu::sort_doubles(a); });
  });
}

// { fdIn, offsetIn, fdOut, length, flag: Int32Array(1) }: copies a byte range between open files off
// the JavaScript thread (salt/file_copy.h); flag[0] becomes 1 when copy_file_range copied it all. The
// caller keeps both files open until the Promise settles.
Napi::Value CopyFileRange(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_file_copy_args a{};
    a.fd_in = static_cast<int32_t>(in.Int("fdIn"));
    a.offset_in = in.Offset("offsetIn");
    a.fd_out = static_cast<int32_t>(in.Int("fdOut"));
    a.offset_out = in.obj_.Get("offsetOut").IsUndefined() ? -1 : in.Offset("offsetOut");
    a.length = in.Offset("length");
    a.writeback = in.Int("writeback", 0) != 0 ? 1 : 0;
    a.out_kernel = in.Array<int32_t>("flag", 1);
    auto* w = new KernelWorker(env, nullptr, {{"flag", in.obj_.Get("flag")}});
    return Queue(w, [a]() { return salt::cpu::copy_file_range_all(a); });
  });
}

// { fd, offset, length }: starts writing that range of the file back to disk (not a flush).
Napi::Value StartWriteback(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_writeback_args a{};
    a.fd = static_cast<int32_t>(in.Int("fd"));
    a.offset = in.Offset("offset");
    a.length = in.Offset("length");
    auto* w = new KernelWorker(env, nullptr, {});
    return Queue(w, [a]() { return salt::cpu::start_writeback(a); });
  });
}

// { fd, fdDirect, offset, fdIn?, offsetIn?, length? | values?, dtype?, writeback?, flag: Int32Array(1) }:
// writes a byte range of the open file fdIn, or `values` encoded as dtype, at `offset` of fd, the whole
// blocks through fdDirect (the same file opened with O_DIRECT, or -1); off the JavaScript thread
// (salt/file_copy.h). flag[0] becomes 1 when direct I/O was used. The caller keeps the files open
// until the Promise settles.
Napi::Value WriteDirect(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_direct_write_args a{};
    a.fd = static_cast<int32_t>(in.Int("fd"));
    a.fd_direct = static_cast<int32_t>(in.Int("fdDirect", -1));
    a.offset = in.Offset("offset");
    a.fd_in = -1;
    const bool floats = !in.obj_.Get("values").IsUndefined();
    if (floats) {
      const std::string dtype = in.Str("dtype", "");
      a.kind = dtype == "F32" ? SALT_WRITE_F32 : half_kind(env, dtype);
      a.n = in.Int("n");
      a.f32 = in.Array<float>("values", a.n);
    } else {
      a.fd_in = static_cast<int32_t>(in.Int("fdIn"));
      a.offset_in = in.Offset("offsetIn");
      a.length = in.Offset("length");
    }
    a.writeback = in.Int("writeback", 0) != 0 ? 1 : 0;
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    a.out_direct = in.Array<int32_t>("flag", 1);
    auto* w = new KernelWorker(env, nullptr, {{"flag", in.obj_.Get("flag")}});
    if (floats) w->PinKeys(in.obj_, {"values"});
    return Queue(w, [a]() { return salt::cpu::write_direct(a); });
  });
}

// ---- kernel ridge linear algebra (salt/kernel_ridge.h), CPU only

// out = K(x, z), or K(x, z) proj: { x, n, z, L, d, linear, width, proj?, r? } -> { out }.
Napi::Value KernelMatrix(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_kernel_args a{};
    a.n = in.Int("n");
    a.L = in.Int("L");
    a.d = in.Int("d");
    if (a.L < 1 || a.d < 1) throw coded_error(env, "E_ARGUMENT", "invalid shape: need n >= 0, L, d >= 1");
    a.linear = in.Double("linear", 0);
    a.width = in.Double("width", 1);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    a.x = in.Array<float>("x", a.n * a.d);
    a.z = in.Array<float>("z", a.L * a.d);
    const bool proj = !in.obj_.Get("proj").IsUndefined();
    a.r = proj ? in.Int("r") : 0;
    if (proj && a.r < 1) throw coded_error(env, "E_ARGUMENT", "invalid shape: r >= 1");
    a.proj = proj ? in.Array<float>("proj", a.L * a.r) : nullptr;
    auto out = alloc<float>(env, a.n * (proj ? a.r : a.L));
    a.out = out.Data();
    auto* w = new KernelWorker(env, nullptr, {{"out", out}});
    w->PinKeys(in.obj_, {"x", "z", "proj"});
    return Queue(w, [a]() { return salt::cpu::kernel_matrix(a); });
  });
}

// c = beta c + op(a) op(b): { a, b, c, rows, inner, cols, transA?, transB?, beta? } with all three
// Float32Array or all Float64Array; c is written in place and returned.
Napi::Value Gemm(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_gemm_args a{};
    a.rows = in.Int("rows");
    a.inner = in.Int("inner");
    a.cols = in.Int("cols");
    a.trans_a = in.Int("transA", 0) != 0;
    a.trans_b = in.Int("transB", 0) != 0;
    a.beta = in.Double("beta", 0);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    Napi::Value av = in.obj_.Get("a");
    a.f64 = av.IsTypedArray() && av.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array;
    if (a.f64) {
      a.a = in.Array<double>("a", a.rows * a.inner);
      a.b = in.Array<double>("b", a.inner * a.cols);
      a.c = in.Array<double>("c", a.rows * a.cols);
    } else {
      a.a = in.Array<float>("a", a.rows * a.inner);
      a.b = in.Array<float>("b", a.inner * a.cols);
      a.c = in.Array<float>("c", a.rows * a.cols);
    }
    auto* w = new KernelWorker(env, nullptr, {{"c", in.obj_.Get("c")}});
    w->PinKeys(in.obj_, {"a", "b"});
    return Queue(w, [a]() { return salt::cpu::gemm(a); });
  });
}

// { a: Float64Array n x n, n } -> { evals, vectors } (a is overwritten by the eigenvectors, as rows).
// { k: Float64Array n x n, n, shift, y: Float64Array n x w, w, outCols } -> { info, out: Float32Array n x outCols }.
Napi::Value KernelLoo(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_loo_args a{};
    a.n = in.Int("n");
    a.w = in.Int("w");
    a.out_cols = in.Int("outCols");
    if (a.n < 1 || a.n > 46340 || a.w < 1 || a.out_cols < 1 || a.out_cols > a.w)
      throw coded_error(env, "E_ARGUMENT", "invalid shape: need 1 <= n <= 46340, 1 <= outCols <= w");
    a.shift = in.Double("shift", 0);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    a.k = in.Array<double>("k", a.n * a.n);
    a.y = in.Array<double>("y", a.n * a.w);
    auto out = alloc<float>(env, a.n * a.out_cols);
    auto infoOut = alloc<int32_t>(env, 1);
    a.out = out.Data();
    a.out_info = infoOut.Data();
    auto* w = new KernelWorker(env, nullptr, {{"info", infoOut}, {"out", out}});
    w->PinKeys(in.obj_, {"k", "y"});
    return Queue(w, [a]() { return salt::cpu::kernel_loo(a); });
  });
}

// { a: Float64Array n x n, n, shift, b: Float64Array n x h, h } -> { info, b } (both overwritten).
Napi::Value CholeskySolve(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_cholesky_args a{};
    a.n = in.Int("n");
    a.h = in.Int("h");
    if (a.n < 1 || a.n > 46340) throw coded_error(env, "E_ARGUMENT", "invalid shape: need 1 <= n <= 46340");
    a.shift = in.Double("shift", 0);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    a.a = in.Array<double>("a", a.n * a.n);
    a.b = in.Array<double>("b", a.n * a.h);
    auto infoOut = alloc<int32_t>(env, 1);
    a.out_info = infoOut.Data();
    auto* w = new KernelWorker(env, nullptr, {{"info", infoOut}, {"b", in.obj_.Get("b")}});
    w->PinKeys(in.obj_, {"a"});
    return Queue(w, [a]() { return salt::cpu::cholesky_solve(a); });
  });
}

// { a: Float64Array n x n, n, shift } -> { info, t } (a overwritten by the whitening matrix T = L^-T).
Napi::Value CholeskyWhiten(const Napi::CallbackInfo& info) {
  return as_promise(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    Args in(info);
    salt_cholesky_args a{};
    a.n = in.Int("n");
    if (a.n < 1 || a.n > 46340) throw coded_error(env, "E_ARGUMENT", "invalid shape: need 1 <= n <= 46340");
    a.shift = in.Double("shift", 0);
    a.threads = static_cast<int32_t>(in.Int("threads", 0));
    a.a = in.Array<double>("a", a.n * a.n);
    auto infoOut = alloc<int32_t>(env, 1);
    a.out_info = infoOut.Data();
    auto* w = new KernelWorker(env, nullptr, {{"info", infoOut}, {"t", in.obj_.Get("a")}});
    return Queue(w, [a]() { return salt::cpu::cholesky_whiten(a); });
  });
}

// (bytes) -> boolean: see salt::fix_malloc_mmap_threshold.
Napi::Value FixMallocMmapThreshold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) throw coded_error(env, "E_TYPE", "bytes must be a number");
  return Napi::Boolean::New(env, salt::fix_malloc_mmap_threshold(info[0].As<Napi::Number>().Int64Value()));
}

// scanTokenizerVocab(bytes, maxDepth) -> { vocabBegin, vocabEnd, mergesBegin, mergesEnd, pieces, ids }
// or { why } when the scan does not handle the file (salt/json_vocab.h). Synchronous: it is called
// by the tokenizer loading workers (tens of ms for a 150k-token file).
Napi::Value ScanTokenizerVocab(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw coded_error(env, "E_TYPE", "bytes must be a Uint8Array", true);
  if (!info[1].IsNumber()) throw coded_error(env, "E_TYPE", "maxDepth must be a number", true);
  Napi::Uint8Array bytes = info[0].As<Napi::Uint8Array>();
  salt::TokenizerVocabScan scan;
  const char* why =
      salt::scan_tokenizer_vocab(bytes.Data(), bytes.ElementLength(), info[1].As<Napi::Number>().Int32Value(), scan);
  // The result is built with the C API and no C++ exceptions: a worker thread terminated while this
  // runs (the tokenizer loader of a transfer that failed early) makes every call fail, and an
  // exception thrown while node-addon-api turns the first one into a JavaScript error aborts the
  // process. Any failure returns nothing; the caller takes the whole-file path.
  napi_env e = env;
  napi_value r, v;
  if (napi_create_object(e, &r) != napi_ok) return Napi::Value();
  if (why != nullptr) {
    if (napi_create_string_utf8(e, why, NAPI_AUTO_LENGTH, &v) != napi_ok ||
        napi_set_named_property(e, r, "why", v) != napi_ok)
      return Napi::Value();
    return Napi::Value(env, r);
  }
  const size_t n = scan.ids.size();
  napi_value pieces;
  if (napi_create_array_with_length(e, n, &pieces) != napi_ok) return Napi::Value();
  size_t begin = 0;
  for (size_t k = 0; k < n; k++) {
    if (napi_create_string_utf8(e, scan.keys.data() + begin, scan.key_ends[k] - begin, &v) != napi_ok ||
        napi_set_element(e, pieces, static_cast<uint32_t>(k), v) != napi_ok)
      return Napi::Value();
    begin = scan.key_ends[k];
  }
  napi_value buffer, ids;
  void* data = nullptr;
  if (napi_create_arraybuffer(e, n * sizeof(int32_t), &data, &buffer) != napi_ok ||
      napi_create_typedarray(e, napi_int32_array, n, buffer, 0, &ids) != napi_ok)
    return Napi::Value();
  if (n > 0) std::copy(scan.ids.begin(), scan.ids.end(), static_cast<int32_t*>(data));
  const std::pair<const char*, double> offsets[] = {{"vocabBegin", static_cast<double>(scan.vocab_begin)},
                                                    {"vocabEnd", static_cast<double>(scan.vocab_end)},
                                                    {"mergesBegin", static_cast<double>(scan.merges_begin)},
                                                    {"mergesEnd", static_cast<double>(scan.merges_end)}};
  for (const auto& [name, value] : offsets)
    if (napi_create_double(e, value, &v) != napi_ok || napi_set_named_property(e, r, name, v) != napi_ok)
      return Napi::Value();
  if (napi_set_named_property(e, r, "pieces", pieces) != napi_ok ||
      napi_set_named_property(e, r, "ids", ids) != napi_ok)
    return Napi::Value();
  return Napi::Value(env, r);
}

// lowerThreadPriority(): see salt/core.h.
Napi::Value LowerThreadPriority(const Napi::CallbackInfo&) {
  salt::lower_thread_priority();
  return Napi::Value();  // undefined, without a call that fails (and throws) in a terminating worker
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const salt::CpuInfo cpu = salt::cpu_info();
  const salt::PluginState& cuda = salt::cuda_plugin();
  Napi::Object r = Napi::Object::New(env);
  r.Set("faiss", cpu.faiss);
  r.Set("blas", cpu.blas);
  r.Set("threads", cpu.max_threads);
  Napi::Object c = Napi::Object::New(env);
  c.Set("available", cuda.plugin != nullptr);
  c.Set("path", cuda.path);
  c.Set("reason", cuda.reason);
  c.Set("description", cuda.description);
  r.Set("cuda", c);
  return r;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  salt::select_blas_kernels();  // before any BLAS work (see salt/core.h)
  exports.Set("topkCosine", Napi::Function::New(env, TopkCosine));
  exports.Set("sparsemax", Napi::Function::New(env, Sparsemax));
  exports.Set("sparsemaxSync", Napi::Function::New(env, SparsemaxSync));
  exports.Set("solveNeighbourhoods", Napi::Function::New(env, SolveNeighbourhoods));
  exports.Set("applyWeights", Napi::Function::New(env, ApplyWeights));
  exports.Set("findNonFinite", Napi::Function::New(env, FindNonFinite));
  exports.Set("columnMeanStd", Napi::Function::New(env, ColumnMeanStd));
  exports.Set("rowNorms", Napi::Function::New(env, RowNorms));
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows));
  exports.Set("copyRows", Napi::Function::New(env, CopyRows));
  exports.Set("releasePages", Napi::Function::New(env, ReleasePages));
  exports.Set("encodeFloats", Napi::Function::New(env, EncodeFloats));
  exports.Set("widenFloats", Napi::Function::New(env, WidenFloats));
  exports.Set("narrowFloats", Napi::Function::New(env, NarrowFloats));
  exports.Set("decodeFloats", Napi::Function::New(env, DecodeFloats));
  exports.Set("sortDoubles", Napi::Function::New(env, SortDoubles));
  exports.Set("allocFloat32", Napi::Function::New(env, AllocFloat<float>));
  exports.Set("allocFloat64", Napi::Function::New(env, AllocFloat<double>));
  exports.Set("kernelMatrix", Napi::Function::New(env, KernelMatrix));
  exports.Set("gemm", Napi::Function::New(env, Gemm));
  exports.Set("kernelLoo", Napi::Function::New(env, KernelLoo));
  exports.Set("choleskySolve", Napi::Function::New(env, CholeskySolve));
  exports.Set("choleskyWhiten", Napi::Function::New(env, CholeskyWhiten));
  exports.Set("copyFileRange", Napi::Function::New(env, CopyFileRange));
  exports.Set("startWriteback", Napi::Function::New(env, StartWriteback));
  exports.Set("writeDirect", Napi::Function::New(env, WriteDirect));
  exports.Set("fixMallocMmapThreshold", Napi::Function::New(env, FixMallocMmapThreshold));
  exports.Set("scanTokenizerVocab", Napi::Function::New(env, ScanTokenizerVocab));
  exports.Set("lowerThreadPriority", Napi::Function::New(env, LowerThreadPriority));
  exports.Set("info", Napi::Function::New(env, Info));
  return exports;
}

}  // namespace

NODE_API_MODULE(salt_transfer, Init)
