// Row-wise sparsemax: the Euclidean projection of a score vector onto the probability simplex.
// With z sorted in descending order, the support size is the largest j with 1 + j z_j > sum_{i<=j} z_i,
// tau = (sum_{i<=support} z_i - 1) / support, and w = max(z - tau, 0).
#include <algorithm>
#include <functional>
#include <vector>

#include "internal.h"

namespace salt {
namespace cpu {

salt_status sparsemax(const salt_sparsemax_args& a) {
  ThreadScope threads(a.threads);  // also for the validation scan
  salt_status st = check_sparsemax(a);
  if (st.code || a.n == 0) return st;
  return guarded([&]() -> salt_status {
    const int64_t K = a.K;
    RegionErrors errors;
#pragma omp parallel
    {
      std::vector<double> z;
      errors.run([&] { z.resize(static_cast<size_t>(K)); });
#pragma omp for schedule(static)
      for (int64_t r = 0; r < a.n; ++r) {
        if (errors.failed()) continue;
        const float* s = a.scores + r * K;
        for (int64_t j = 0; j < K; ++j) z[j] = s[j];
        // Candidate lists from topk_cosine arrive sorted; sort only when they are not.
        if (!std::is_sorted(z.begin(), z.end(), std::greater<double>()))
          std::sort(z.begin(), z.end(), std::greater<double>());
        double cum = 0, tau_sum = z[0];
        int64_t support = 1;
        for (int64_t j = 0; j < K; ++j) {
          cum += z[j];
          if (1.0 + static_cast<double>(j + 1) * z[j] > cum) {
            support = j + 1;
            tau_sum = cum;
          }
        }
        const double tau = (tau_sum - 1.0) / static_cast<double>(support);
        float* w = a.out_weights + r * K;
        for (int64_t j = 0; j < K; ++j) {
          const double v = static_cast<double>(s[j]) - tau;
          w[j] = v > 0 ? static_cast<float>(v) : 0.0f;
        }
        a.out_support[r] = static_cast<int32_t>(support);
      }
    }
    if (errors.failed()) return errors.status("sparsemax");
    return ok_status();
  });
}

}  // namespace cpu
}  // namespace salt
