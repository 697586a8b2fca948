// Host test of native/cuda/sparsemax_row.h: the row sparsemax the CUDA kernel runs, executed here with
// one "thread", against the CPU backend's sparsemax (bit-exact: same sort result, same order of
// additions). Runs without a GPU; built (target salt_cuda_sparsemax_test) and run by
// scripts/cuda-compile-check.sh. Prints "sparsemax_host_test: N passed, M failed".
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

#include "../sparsemax_row.h"
#include "salt/core.h"

namespace {

struct NoBarrier {
  void operator()() const {}
};

int passed = 0, failed = 0;

void check(std::mt19937& gen, int64_t n, int64_t K, int kind) {
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> level(-2, 2);
  std::vector<float> s(static_cast<size_t>(n * K));
  for (int64_t i = 0; i < n; ++i) {
    float* row = s.data() + i * K;
    for (int64_t j = 0; j < K; ++j)
      row[j] = kind == 1 ? 0.5f * level(gen) : (kind == 2 ? 0.3f : nd(gen) * (kind == 3 ? 1e-3f : 1.0f));
    if (i % 2 == 0) std::sort(row, row + K, std::greater<float>());  // candidate lists arrive sorted
  }
  std::vector<float> w_cpu(s.size()), w_dev(s.size());
  std::vector<int32_t> sup_cpu(n), sup_dev(n);
  salt_sparsemax_args a{};
  a.scores = s.data();
  a.n = n;
  a.K = K;
  a.out_weights = w_cpu.data();
  a.out_support = sup_cpu.data();
  a.threads = 1;
  const salt_status st = salt::cpu::sparsemax(a);
  if (st.code != SALT_OK) {
    ++failed;
    std::printf("FAIL CPU sparsemax: %s\n", st.message);
    return;
  }
  int P = 1;
  while (P < K) P <<= 1;
  std::vector<double> z(P);
  double tau = 0;
  for (int64_t i = 0; i < n; ++i)
    salt::cuda::sparsemax_row(s.data() + i * K, K, P, z.data(), &tau, w_dev.data() + i * K, sup_dev.data() + i, 0, 1,
                              NoBarrier());
  const bool ok = sup_cpu == sup_dev && std::memcmp(w_cpu.data(), w_dev.data(), w_cpu.size() * sizeof(float)) == 0;
  if (ok) {
    ++passed;
  } else {
    ++failed;
    std::printf("FAIL sparsemax rows differ from the CPU's (n = %lld, K = %lld, kind %d)\n", static_cast<long long>(n),
                static_cast<long long>(K), kind);
  }
}

}  // namespace

int main() {
  std::mt19937 gen(3);
  for (int kind = 0; kind < 4; ++kind)
    for (int64_t K : {1, 2, 3, 17, 64, 100, 256, 1000, 4096}) check(gen, 50, K, kind);
  std::printf("sparsemax_host_test: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
