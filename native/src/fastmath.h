// Vectorisable float exp and tanh, shared by the element-wise kernels (kernels.cc) and the fused
// ones (fused.cc).
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace af {
// exp and tanh as branch-free float code the compiler vectorises (libm's scalar calls cost ~20 ns an
// element here). Cephes expf: x = n·ln2 + r with ln2 split in two parts, a degree-6 polynomial for
// e^r, 2^n by building the exponent bits; relative error ~1e-7 (2 ulp) over the float range.
inline float fast_exp(float x) {
  float xc = x > 88.72283905206835f ? 88.72283905206835f : x;
  xc = xc < -87.3365478515625f ? -87.3365478515625f : xc;
  // floor(t) as truncation of t + 128 (t > -126 after the clamp): floorf stays a libm call without
  // -ffast-math, and a compare-and-correct floor stops GCC from vectorising the loop
  float t = xc * 1.44269504088896341f + 0.5f;
  int32_t ni = (int32_t)(t + 128.0f) - 128;
  float n = (float)ni;
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.0f;
  // p · 2^(n−1) · 2 so that n = 128 (x up to 88.72) stays finite; x below −86.99 flushes to 0
  float y = p * __builtin_bit_cast(float, (ni + 126) << 23) * 2.0f;
  y = x > 88.72283905206835f ? std::numeric_limits<float>::infinity() : y;
  y = x < -87.3365478515625f ? 0.0f : y;
  return x != x ? x : y;
}
// Cephes tanhf: an odd polynomial below |x| 0.625, 1 − 2/(e^{2|x|} + 1) above, sign restored.
inline float fast_tanh(float x) {
  float ax = std::fabs(x);
  float z = x * x;
  float small = ((((-5.70498872745E-3f * z + 2.06390887954E-2f) * z - 5.37397155531E-2f) * z + 1.33314422036E-1f) * z -
                 3.33332819422E-1f) * z * x + x;
  float e = fast_exp(2.0f * (ax > 44.0f ? 44.0f : ax));
  float big = 1.0f - 2.0f / (e + 1.0f);
  big = x < 0 ? -big : big;
  float y = ax < 0.625f ? small : big;
  return x != x ? x : y;
}

}  // namespace af
