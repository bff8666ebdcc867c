#include "mnist/vision/preprocess.h"

#include <algorithm>
#include <array>
#include <cfloat>
#include <chrono>
#include <cmath>
#include <optional>

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/core/runtime.h"
#include "mnist/vision/image_io.h"

namespace mnist::vision {
namespace {

constexpr double kMinContrast = 0.04;    // ink must differ from the background by 4% of full scale
constexpr double kMinSignalToNoise = 6;  // ... and by six noise deviations
constexpr double kSpeckShare = 0.08;     // components smaller than this share of the largest go
// MNIST's stroke width in 28x28 pixels (2 x area / perimeter above half intensity): median 1.96,
// 5% and 95% quantiles 1.28 and 3.0 over the training set. Strokes outside are brought inside.
constexpr double kThinStroke = 1.3;
constexpr double kThickStroke = 3.0;
// The background surface: fitted to about this many sampled pixels (enough for six coefficients,
// fast on a 12-megapixel photo), and only when at least this many are usable (else the median).
constexpr double kSurfaceSamples = 4000;
constexpr int kMinSurfaceSamples = 24;
// The border ring whose median colour is the first guess of the paper: 4% of the shorter side.
constexpr double kBorderShare = 0.04;
// Each refit uses the pixels closest to the current surface: this share (ink covers far less of an
// image of one digit), over this many rounds.
constexpr double kBackgroundShare = 0.6;
constexpr int kBackgroundRefits = 3;
// The surfaces are fitted on a copy of the image reduced to this longer side (MNIST_PLAIN: at the
// working size).
constexpr int kFitSide = 128;
// Images with a longer side of at least this many pixels are smoothed before thresholding (pixel
// noise of photos and scans; MNIST-sized crops are left sharp).
constexpr int kSmoothFromSide = 64;
// The Gaussian's sigma for that smoothing: a 300th of the longer side, at least 0.8 pixel.
constexpr double kSmoothSidePerSigma = 300.0;
constexpr double kMinSmoothSigma = 0.8;
// The region kept around the thresholded strokes grows by a 150th of the longer side, at least 2
// pixels: the antialiased edge lies just outside the core.
constexpr int kGrowSidePerPixel = 150;
constexpr int kMinGrow = 2;
// Median absolute deviation to standard deviation for Gaussian noise: 1 / Phi^-1(3/4).
constexpr float kMadToSigma = 1.4826F;
// The threshold is at least this many noise deviations and this share of the peak ink (Otsu alone
// splits noise when there is little ink).
constexpr double kNoiseCuts = 4.0;
constexpr double kPeakShareCut = 0.2;
// The stroke core (its 90% quantile) becomes full ink; intensities below this many noise deviations
// become background.
constexpr double kCoreQuantile = 0.9;
constexpr double kNoiseFloors = 3.0;
// A core already above 95% with no measurable noise is an MNIST crop at full scale: kept as it is.
constexpr double kFullScaleCore = 0.95;
// The clean route (see preprocess.h): its test. The border ring (as above)
// must lie within kCleanLevels grey levels (of 255) of its median for kCleanBorderShare of its
// pixels, with a noise (MAD) of at most kCleanNoise levels; the channels of a colour image must
// agree within kCleanLevels for all but kCleanColourShare of the pixels; of the pixels off the
// background, at least kCleanOneSide must be on the side of the ink (darker or lighter); and the
// background must cover at least kCleanPaperShare of the image.
// It works at the robust route's working size: a smaller one (256 px) made it several times faster
// again but lost 0.2 to 0.6 points on seven styles of the user-image set at 1000 images per style.
constexpr int kCleanLevels = 12;
constexpr double kCleanBorderShare = 0.9;
constexpr double kCleanNoise = 1.0;
constexpr double kCleanColourShare = 0.005;
constexpr double kCleanOneSide = 0.98;
constexpr double kCleanPaperShare = 0.4;

/// The Gaussian's sigma that smooths an ink map of longer side `side` before thresholding (0:
/// none).
double smooth_sigma(int side) {
  return side >= kSmoothFromSide ? std::max(kMinSmoothSigma, side / kSmoothSidePerSigma) : 0.0;
}

/// How far the kept region grows around the thresholded strokes, in pixels.
int grow_of(int side) {
  return std::max(kMinGrow, side / kGrowSidePerPixel);
}

/// How far the threshold stage reaches from a pixel: the smoothing kernel's radius (OpenCV's size
/// for float images: 8 sigma + 1, odd), the growth, and one more.
int reach(int side) {
  const double sigma = smooth_sigma(side);
  const int radius = sigma > 0 ? (cvRound(sigma * 8 + 1) | 1) / 2 : 0;
  return radius + grow_of(side) + 1;
}

/// Otsu's threshold over a 256-bin histogram: the bin that maximises the between-class variance
/// (OpenCV's THRESH_OTSU, computed the same way, from a histogram this code builds).
int otsu_threshold(const std::array<int64_t, 256>& hist) {
  int64_t total = 0;
  double mu = 0;
  for (int i = 0; i < 256; ++i) {
    total += hist[static_cast<size_t>(i)];
    mu += i * static_cast<double>(hist[static_cast<size_t>(i)]);
  }
  if (total == 0) return 0;
  const double scale = 1.0 / static_cast<double>(total);
  mu *= scale;
  double mu1 = 0, q1 = 0, max_sigma = 0;
  int max_val = 0;
  for (int i = 0; i < 256; ++i) {
    const double p_i = static_cast<double>(hist[static_cast<size_t>(i)]) * scale;
    mu1 *= q1;
    q1 += p_i;
    const double q2 = 1.0 - q1;
    if (std::min(q1, q2) < FLT_EPSILON || std::max(q1, q2) > 1.0 - FLT_EPSILON) continue;
    mu1 = (mu1 + i * p_i) / q1;
    const double mu2 = (mu - q1 * mu1) / q2;
    const double sigma = q1 * q2 * (mu1 - mu2) * (mu1 - mu2);
    if (sigma > max_sigma) {
      max_sigma = sigma;
      max_val = i;
    }
  }
  return max_val;
}

/// Adds the values of a CV_8UC1 image (or view) to `hist` (four partial counts, so that runs of
/// equal values do not wait on one counter).
void add_histogram(const cv::Mat& m, std::array<int64_t, 256>* hist) {
  std::array<std::array<int32_t, 256>, 4> part{};
  for (int y = 0; y < m.rows; ++y) {
    const uint8_t* row = m.ptr<uint8_t>(y);
    int x = 0;
    for (; x + 4 <= m.cols; x += 4) {
      ++part[0][row[x]];
      ++part[1][row[x + 1]];
      ++part[2][row[x + 2]];
      ++part[3][row[x + 3]];
    }
    for (; x < m.cols; ++x) ++part[0][row[x]];
  }
  for (size_t i = 0; i < 256; ++i) (*hist)[i] += part[0][i] + part[1][i] + part[2][i] + part[3][i];
}

/// Any depth -> float in [0, 1], channels kept.
cv::Mat to_unit_float(const cv::Mat& img) {
  cv::Mat out;
  switch (img.depth()) {
    case CV_8U:
      img.convertTo(out, CV_32F, 1.0 / 255);
      break;
    case CV_16U:
      img.convertTo(out, CV_32F, 1.0 / 65535);
      break;
    case CV_32F:
    case CV_64F: {
      img.convertTo(out, CV_32F);
      double lo = 0, hi = 0;
      cv::minMaxLoc(out.reshape(1), &lo, &hi);
      if (lo < 0 || hi > 1) out = (out - lo) / std::max(hi - lo, 1e-12);
      break;
    }
    default: {
      img.convertTo(out, CV_32F);
      double lo = 0, hi = 0;
      cv::minMaxLoc(out.reshape(1), &lo, &hi);
      out = (out - lo) / std::max(hi - lo, 1e-12);
    }
  }
  return out;
}

/// The q-quantile (0..1) of a single-channel float image's values (optionally where mask != 0):
/// the k-th smallest value, exactly. Two passes instead of a sort: a histogram over the value range
/// finds the bin that holds the k-th value, and only that bin's values are ordered.
float quantile(const cv::Mat& m, double q, const cv::Mat& mask = cv::Mat()) {
  double lo = 0, hi = 0;
  cv::minMaxLoc(m, &lo, &hi, nullptr, nullptr, mask);
  const int64_t n = mask.empty() ? static_cast<int64_t>(m.total()) : cv::countNonZero(mask);
  if (n == 0) return 0.0F;
  const auto k = static_cast<int64_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(n - 1));
  if (hi <= lo) return static_cast<float>(lo);
  constexpr int kBins = 4096;
  const double to_bin = (kBins - 1) / (hi - lo);
  auto bin_of = [&](float v) {
    return std::clamp(static_cast<int>((v - lo) * to_bin), 0, kBins - 1);
  };
  std::vector<int64_t> count(kBins, 0);
  for (int y = 0; y < m.rows; ++y) {
    const float* row = m.ptr<float>(y);
    const uint8_t* mrow = mask.empty() ? nullptr : mask.ptr<uint8_t>(y);
    for (int x = 0; x < m.cols; ++x) {
      if (!mrow || mrow[x]) ++count[static_cast<size_t>(bin_of(row[x]))];
    }
  }
  int bin = 0;
  int64_t before = 0;
  while (before + count[static_cast<size_t>(bin)] <= k) before += count[static_cast<size_t>(bin++)];
  std::vector<float> v;
  v.reserve(static_cast<size_t>(count[static_cast<size_t>(bin)]));
  for (int y = 0; y < m.rows; ++y) {
    const float* row = m.ptr<float>(y);
    const uint8_t* mrow = mask.empty() ? nullptr : mask.ptr<uint8_t>(y);
    for (int x = 0; x < m.cols; ++x) {
      if ((!mrow || mrow[x]) && bin_of(row[x]) == bin) v.push_back(row[x]);
    }
  }
  const auto at = v.begin() + static_cast<std::ptrdiff_t>(k - before);
  std::nth_element(v.begin(), at, v.end());
  return *at;
}

/// quantile(v, q, mask) where `bins` is v scaled to 8 bits by a positive factor (convertTo: a
/// monotone map, so a lower bin holds only smaller values): the bin of the k-th value from one
/// 256-bin histogram, then only that bin's values ordered. The same value, exactly.
float binned_quantile(const cv::Mat& v, const cv::Mat& bins, double q, const cv::Mat& mask) {
  const int64_t n = cv::countNonZero(mask);
  if (n == 0) return 0.0F;
  cv::Mat masked;
  cv::bitwise_and(bins, mask, masked);  // (mask is 0 or 255)
  std::array<int64_t, 256> hist{};
  add_histogram(masked, &hist);
  hist[0] -= static_cast<int64_t>(masked.total()) - n;  // the pixels outside the mask
  const auto k = static_cast<int64_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(n - 1));
  int bin = 0;
  int64_t before = 0;
  while (before + hist[static_cast<size_t>(bin)] <= k) before += hist[static_cast<size_t>(bin++)];
  std::vector<float> values;
  values.reserve(static_cast<size_t>(hist[static_cast<size_t>(bin)]));
  for (int y = 0; y < v.rows; ++y) {
    const float* row = v.ptr<float>(y);
    const uint8_t* brow = bins.ptr<uint8_t>(y);
    const uint8_t* mrow = mask.ptr<uint8_t>(y);
    for (int x = 0; x < v.cols; ++x) {
      if (mrow[x] && brow[x] == bin) values.push_back(row[x]);
    }
  }
  const auto at = values.begin() + static_cast<std::ptrdiff_t>(k - before);
  std::nth_element(values.begin(), at, values.end());
  return *at;
}

/// A smooth background: a + bx + cy + dx^2 + exy + fy^2 in coordinates normalised to [-1, 1]
/// (the same surface at any resolution of the image), or a constant level.
struct Surface {
  bool quadratic = false;
  std::array<double, 6> c{};
  float level = 0;
};

/// Least-squares quadratic surface through `plane` at the pixels where `use` != 0 (subsampled to a
/// few thousand points); the constant median when too few.
Surface fit_surface(const cv::Mat& plane, const cv::Mat& use) {
  const int h = plane.rows;
  const int w = plane.cols;
  const int step =
      std::max(1, static_cast<int>(std::sqrt(static_cast<double>(h) * w / kSurfaceSamples)));
  cv::Mat ata = cv::Mat::zeros(6, 6, CV_64F);
  cv::Mat atb = cv::Mat::zeros(6, 1, CV_64F);
  int n = 0;
  auto basis = [&](int x, int y, double* f) {
    const double u = (2.0 * x + 1) / w - 1;
    const double v = (2.0 * y + 1) / h - 1;
    f[0] = 1;
    f[1] = u;
    f[2] = v;
    f[3] = u * u;
    f[4] = u * v;
    f[5] = v * v;
  };
  for (int y = 0; y < h; y += step) {
    for (int x = 0; x < w; x += step) {
      if (!use.at<uint8_t>(y, x)) continue;
      double f[6];
      basis(x, y, f);
      for (int i = 0; i < 6; ++i) {
        for (int j = 0; j < 6; ++j) ata.at<double>(i, j) += f[i] * f[j];
        atb.at<double>(i) += f[i] * plane.at<float>(y, x);
      }
      ++n;
    }
  }
  Surface out;
  cv::Mat coef;
  if (n < kMinSurfaceSamples || !cv::solve(ata, atb, coef, cv::DECOMP_CHOLESKY)) {
    out.level = quantile(plane, 0.5, use);
    return out;
  }
  out.quadratic = true;
  for (int i = 0; i < 6; ++i) out.c[static_cast<size_t>(i)] = coef.at<double>(i);
  return out;
}

/// `s` at every pixel of an h x w image: the same products and sums in the same order as the
/// basis . coefficients, with the terms that depend on one coordinate only computed once per row
/// or column.
cv::Mat eval_surface(const Surface& s, int h, int w) {
  if (!s.quadratic) return cv::Mat(h, w, CV_32F, cv::Scalar(s.level));
  const auto& c = s.c;
  std::vector<double> u(static_cast<size_t>(w)), u_c1(u.size()), uu_c3(u.size());
  for (int x = 0; x < w; ++x) {
    const double ux = (2.0 * x + 1) / w - 1;
    u[static_cast<size_t>(x)] = ux;
    u_c1[static_cast<size_t>(x)] = ux * c[1];
    uu_c3[static_cast<size_t>(x)] = (ux * ux) * c[3];
  }
  cv::Mat surface(h, w, CV_32F);
  for (int y = 0; y < h; ++y) {
    const double v = (2.0 * y + 1) / h - 1;
    const double v_c2 = v * c[2];
    const double vv_c5 = (v * v) * c[5];
    auto* row = surface.ptr<float>(y);
    for (int x = 0; x < w; ++x) {
      const auto k = static_cast<size_t>(x);
      double sum = 0.0 + c[0];
      sum += u_c1[k];
      sum += v_c2;
      sum += uu_c3[k];
      sum += (u[k] * v) * c[4];
      sum += vv_c5;
      row[x] = static_cast<float>(sum);
    }
  }
  return surface;
}

/// Distance of every pixel's colour from the background surfaces.
cv::Mat residual(const std::vector<cv::Mat>& planes, const std::vector<cv::Mat>& bg) {
  cv::Mat r = cv::Mat::zeros(planes[0].size(), CV_32F);
  for (size_t c = 0; c < planes.size(); ++c) {
    cv::Mat d = planes[c] - bg[c];
    r += d.mul(d);
  }
  cv::sqrt(r, r);
  return r;
}

struct InkMap {
  cv::Mat v;        // ink strength >= 0 over `region`, background about 0
  cv::Rect region;  // where `v` lies in the working image (empty: all of it)
  // The clean route's map covers only the ink's neighbourhood: outside `region` every pixel is
  // within kCleanLevels of the paper, and outside[l] of them are l grey levels off it.
  std::array<int64_t, kCleanLevels + 1> outside{};
  float noise = 0;    // standard deviation of the background along the ink direction
  bool dark = false;  // ink darker than the background
};

/// The paper's smooth surfaces, one per channel of `f` (float, any size): from the border ring's
/// median colour, refitted to the pixels that look like background.
std::vector<Surface> fit_background(const cv::Mat& f) {
  std::vector<cv::Mat> planes;
  cv::split(f, planes);
  const int h = f.rows;
  const int w = f.cols;
  // Start from the median colour of the border ring: the paper, whatever the digit does inside.
  const int ring = std::max(1, static_cast<int>(std::lround(kBorderShare * std::min(h, w))));
  cv::Mat border(h, w, CV_8U, cv::Scalar(255));
  border(cv::Rect(ring, ring, std::max(0, w - 2 * ring), std::max(0, h - 2 * ring))) = 0;
  std::vector<Surface> surfaces(planes.size());
  std::vector<cv::Mat> bg;
  for (size_t c = 0; c < planes.size(); ++c) {
    surfaces[c].level = quantile(planes[c], 0.5, border);
    bg.push_back(eval_surface(surfaces[c], h, w));
  }
  // Refit a smooth surface to the pixels that look like background: each time the 60% closest to
  // the current surface (ink covers far less of an image of one digit), so the fit moves from the
  // border's colour to the page's real light and never learns the ink itself.
  for (int iter = 0; iter < kBackgroundRefits; ++iter) {
    const cv::Mat r = residual(planes, bg);
    const cv::Mat use = r <= quantile(r, kBackgroundShare);
    for (size_t c = 0; c < planes.size(); ++c) {
      surfaces[c] = fit_surface(planes[c], use);
      bg[c] = eval_surface(surfaces[c], h, w);
    }
  }
  return surfaces;
}

/// Colour or gray image -> ink strength, with background surface and polarity removed.
InkMap ink_from_colour(const cv::Mat& f) {
  std::vector<cv::Mat> planes;
  cv::split(f, planes);
  const int h = f.rows;
  const int w = f.cols;
  // The background is fitted on a copy reduced to kFitSide (area means: the paper's light varies
  // slowly, and the fit samples a few thousand points at any size), then evaluated here.
  cv::Mat small = f;
  const int longer = std::max(h, w);
  if (!plain_paths() && longer > kFitSide) {
    const double s = static_cast<double>(kFitSide) / longer;
    cv::resize(f, small,
               cv::Size(std::max(1, static_cast<int>(std::lround(w * s))),
                        std::max(1, static_cast<int>(std::lround(h * s)))),
               0, 0, cv::INTER_AREA);
  }
  std::vector<cv::Mat> bg;
  for (const Surface& surface : fit_background(small)) bg.push_back(eval_surface(surface, h, w));
  // The ink direction: the mean difference from the background of the pixels that differ most.
  std::vector<cv::Mat> diff(planes.size());
  for (size_t c = 0; c < planes.size(); ++c) diff[c] = planes[c] - bg[c];
  const cv::Mat r = residual(planes, bg);
  // Smoothed in place: the peak and the strong pixels below both come from the smoothed map.
  cv::Mat smooth = r;
  if (std::max(h, w) >= kSmoothFromSide) cv::GaussianBlur(r, smooth, cv::Size(3, 3), 0);
  double peak = 0;
  cv::minMaxLoc(smooth, nullptr, &peak);
  cv::Mat strong;
  cv::Mat(r >= 0.5 * peak).convertTo(strong, CV_32F, 1.0 / 255);
  std::vector<double> dir(planes.size());
  double norm = 0;
  for (size_t c = 0; c < planes.size(); ++c) {
    dir[c] = cv::sum(diff[c].mul(strong))[0];
    norm += dir[c] * dir[c];
  }
  norm = std::sqrt(norm);
  InkMap ink;
  cv::Mat proj = cv::Mat::zeros(h, w, CV_32F);
  double luminance = 0;
  static const double kLuma[3] = {0.114, 0.587, 0.299};  // BGR
  for (size_t c = 0; c < planes.size(); ++c) {
    const double e = norm > 0 ? dir[c] / norm : 1.0 / std::sqrt(double(planes.size()));
    proj += diff[c] * e;
    luminance += e * (planes.size() == 3 ? kLuma[c] : 1.0);
  }
  ink.dark = luminance < 0;
  ink.noise = kMadToSigma * quantile(cv::abs(proj), 0.5);
  ink.v = cv::max(proj, 0.0);
  return ink;
}

/// The clean route's ink map (see preprocess.h) of `image`, already at the working size
/// (reduce_to_working_size), or nothing when it does not pass the clean test. With
/// `neighbourhood`, the map covers only the ink's neighbourhood (InkMap::region).
std::optional<InkMap> clean_ink(const cv::Mat& image, bool neighbourhood) {
  const int channels = image.channels();
  if (plain_paths() || (image.depth() != CV_8U && image.depth() != CV_16U) ||
      (channels != 1 && channels != 3 && channels != 4)) {
    return std::nullopt;
  }
  cv::Mat img = image;
  if (img.depth() == CV_16U) img.convertTo(img, CV_8U, 1.0 / 257);
  cv::Mat gray = img;
  if (channels > 1) {
    // Opaque (transparency has its own route), and the channels agree: gray ink on gray paper.
    std::vector<cv::Mat> planes;
    cv::split(img, planes);
    if (channels == 4) {
      double lowest_alpha = 0;
      cv::minMaxLoc(planes[3], &lowest_alpha);
      if (lowest_alpha < 250) return std::nullopt;
    }
    cv::Mat spread, other;  // the largest difference between two channels
    cv::absdiff(planes[0], planes[1], spread);
    cv::absdiff(planes[1], planes[2], other);
    cv::max(spread, other, spread);
    cv::absdiff(planes[0], planes[2], other);
    cv::max(spread, other, spread);
    const int coloured = cv::countNonZero(spread > kCleanLevels);
    if (coloured > kCleanColourShare * static_cast<double>(img.total())) return std::nullopt;
    cv::cvtColor(img, gray, channels == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  }
  const int h = gray.rows;
  const int w = gray.cols;
  // Histograms of the border ring (the paper) and of the whole image.
  const int ring = std::max(1, static_cast<int>(std::lround(kBorderShare * std::min(h, w))));
  std::array<int64_t, 256> edge{}, all{};
  add_histogram(gray, &all);
  if (2 * ring >= h || 2 * ring >= w) {
    edge = all;
  } else {
    add_histogram(gray.rowRange(0, ring), &edge);
    add_histogram(gray.rowRange(h - ring, h), &edge);
    add_histogram(gray(cv::Rect(0, ring, ring, h - 2 * ring)), &edge);
    add_histogram(gray(cv::Rect(w - ring, ring, ring, h - 2 * ring)), &edge);
  }
  auto median_of = [](const std::array<int64_t, 256>& hist, int64_t total) {
    int64_t seen = 0;
    for (int i = 0; i < 256; ++i) {
      seen += hist[static_cast<size_t>(i)];
      if (2 * seen > total) return i;
    }
    return 255;
  };
  int64_t edge_total = 0;
  for (const auto c : edge) edge_total += c;
  const int paper = median_of(edge, edge_total);
  std::array<int64_t, 256> deviation{};  // |value - paper| over the border ring
  int64_t near = 0;
  for (int i = 0; i < 256; ++i) {
    const int d = std::abs(i - paper);
    deviation[static_cast<size_t>(d)] += edge[static_cast<size_t>(i)];
    if (d <= kCleanLevels) near += edge[static_cast<size_t>(i)];
  }
  const double mad = median_of(deviation, edge_total);
  if (near < kCleanBorderShare * edge_total || mad > kCleanNoise) return std::nullopt;
  int64_t darker = 0, lighter = 0;
  for (int i = 0; i < 256; ++i) {
    if (i < paper - kCleanLevels) darker += all[static_cast<size_t>(i)];
    if (i > paper + kCleanLevels) lighter += all[static_cast<size_t>(i)];
  }
  const int64_t total = static_cast<int64_t>(gray.total());
  const int64_t off = darker + lighter;
  if (off == 0 || total - off < kCleanPaperShare * total ||
      std::max(darker, lighter) < kCleanOneSide * off) {
    return std::nullopt;
  }
  InkMap ink;
  ink.dark = darker > lighter;
  cv::Mat d;
  if (ink.dark) {
    cv::subtract(cv::Scalar(paper), gray, d);  // saturates at 0
  } else {
    cv::subtract(gray, cv::Scalar(paper), d);
  }
  ink.noise = static_cast<float>(kMadToSigma * mad / 255);
  if (neighbourhood) {
    // The box of the pixels more than kCleanLevels off the paper, widened by what the threshold
    // stage reaches from them (its smoothing and its growth): the stage sees nothing else.
    const cv::Rect ink_box = cv::boundingRect(d > kCleanLevels);
    if (!ink_box.empty()) {
      const int m = reach(std::max(h, w));
      const cv::Rect region =
          cv::Rect(ink_box.x - m, ink_box.y - m, ink_box.width + 2 * m, ink_box.height + 2 * m) &
          cv::Rect(0, 0, w, h);
      if (region.area() < static_cast<int64_t>(w) * h) {
        ink.region = region;
        std::array<int64_t, 256> inside{};
        add_histogram(d(region), &inside);
        for (int l = 0; l <= kCleanLevels; ++l) {
          // The image's pixels l levels off the paper (on either side: the ink map saturates
          // the other side to 0), less those inside the region.
          int64_t n = 0;
          if (l == 0) {
            for (int i = 0; i < 256; ++i) {
              if (ink.dark ? i >= paper : i <= paper) n += all[static_cast<size_t>(i)];
            }
          } else {
            const int i = ink.dark ? paper - l : paper + l;
            if (i >= 0 && i < 256) n = all[static_cast<size_t>(i)];
          }
          ink.outside[static_cast<size_t>(l)] = n - inside[static_cast<size_t>(l)];
        }
        d = d(region);
      }
    }
  }
  d.convertTo(ink.v, CV_32F, 1.0 / 255);
  return ink;
}

/// Keeps the digit's parts of the ink map: Otsu on the smoothed map, connected components, specks
/// dropped; returns the kept ink (over ink.region) with its intensities stretched so the stroke
/// core is 1. `side` is the working image's longer side. Nothing when the map covers only the
/// ink's neighbourhood and the threshold falls so low that pixels outside it would pass: the
/// caller then asks for the whole map.
std::optional<cv::Mat> isolate_digit(const InkMap& ink, int side, const std::string& name) {
  // The map smoothed (the pixel noise of photos and scans): what is thresholded, and what the
  // kept ink's intensities come from.
  cv::Mat v = ink.v;
  const double sigma = smooth_sigma(side);
  if (sigma > 0) {
    v = cv::Mat();
    cv::GaussianBlur(ink.v, v, cv::Size(), sigma);
  }
  const cv::Mat& smooth = v;
  double peak = 0;
  cv::minMaxLoc(smooth, nullptr, &peak);
  if (peak < kMinContrast || peak < kMinSignalToNoise * ink.noise) {
    throw UnusableImage(name + ": no digit found (nothing stands out from the background)");
  }
  // Otsu's threshold on the smoothed map scaled to 8 bits, the pixels outside the region counted
  // at their own level.
  std::array<int64_t, 256> hist{};
  cv::Mat s8;
  smooth.convertTo(s8, CV_8U, 255.0 / peak);
  add_histogram(s8, &hist);
  for (int l = 0; l <= kCleanLevels; ++l) {
    hist[cv::saturate_cast<uint8_t>(l / peak)] += ink.outside[static_cast<size_t>(l)];
  }
  const double otsu = otsu_threshold(hist) * peak / 255;
  const double cut = std::max({otsu, kNoiseCuts * ink.noise, kPeakShareCut * peak});
  if (!ink.region.empty() && cut * 255 < kCleanLevels) return std::nullopt;
  const cv::Mat mask = smooth > cut;
  // Connected components; those smaller than kSpeckShare of the largest are dropped.
  cv::Mat labels;
  const int n = cv::connectedComponents(mask, labels, 8, CV_32S);
  cv::Mat keep = mask;
  if (n > 2) {
    std::vector<int64_t> area(static_cast<size_t>(n), 0);
    for (int y = 0; y < labels.rows; ++y) {
      const int* lrow = labels.ptr<int>(y);
      for (int x = 0; x < labels.cols; ++x) ++area[static_cast<size_t>(lrow[x])];
    }
    const int64_t largest = *std::max_element(area.begin() + 1, area.end());
    std::vector<uint8_t> kept(static_cast<size_t>(n), 0);
    bool all_kept = true;
    for (size_t i = 1; i < area.size(); ++i) {
      kept[i] = area[i] >= kSpeckShare * static_cast<double>(largest) ? 255 : 0;
      all_kept = all_kept && kept[i];
    }
    if (!all_kept) {
      // One pass over the labels with a table of the components kept.
      keep = cv::Mat(v.size(), CV_8U);
      for (int y = 0; y < v.rows; ++y) {
        const int* lrow = labels.ptr<int>(y);
        uint8_t* krow = keep.ptr<uint8_t>(y);
        for (int x = 0; x < v.cols; ++x) krow[x] = kept[static_cast<size_t>(lrow[x])];
      }
    }
  }
  // The stroke's antialiased edge lies just outside the thresholded core: widen the region a
  // little.
  const int grow = grow_of(side);
  cv::Mat grown;  // (not in place: `keep` may be `mask`, used below)
  cv::dilate(keep, grown,
             cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * grow + 1, 2 * grow + 1)));
  // Noise below half a grey level is no noise (and an MNIST crop's background is exactly 0).
  const double floor = ink.noise > 0.5 / 255 ? kNoiseFloors * ink.noise : 0.0;
  double core = binned_quantile(v, s8, kCoreQuantile, mask);
  if (floor == 0 && core > kFullScaleCore) core = 1.0;
  // (v - floor) / (core - floor), clamped to [0, 1], where kept; 0 elsewhere.
  const auto f = static_cast<float>(floor);
  const auto stretch = static_cast<float>(1.0 / std::max(core - floor, 1e-6));
  cv::Mat out(v.size(), CV_32F);
  for (int y = 0; y < v.rows; ++y) {
    const float* vrow = v.ptr<float>(y);
    const uint8_t* krow = grown.ptr<uint8_t>(y);
    float* orow = out.ptr<float>(y);
    for (int x = 0; x < v.cols; ++x) {
      orow[x] = krow[x] ? std::min(std::max((vrow[x] - f) * stretch, 0.0F), 1.0F) : 0.0F;
    }
  }
  return out;
}

/// Mean stroke width of the ink in `patch` in pixels: 2 x area / perimeter of the ink above half
/// intensity (for a long stroke of width w, area = w * length and perimeter = 2 * length).
double stroke_width(const cv::Mat& patch) {
  const cv::Mat ink = patch > 0.5;
  const int area = cv::countNonZero(ink);
  if (area == 0) return 0.0;
  const int h = ink.rows;
  const int w = ink.cols;
  // Changes between horizontal and between vertical neighbours, and the ink on the outer rows and
  // columns (bordered by no ink).
  int edges = cv::countNonZero(ink.row(0)) + cv::countNonZero(ink.row(h - 1)) +
              cv::countNonZero(ink.col(0)) + cv::countNonZero(ink.col(w - 1));
  if (w > 1) edges += cv::countNonZero(ink.colRange(0, w - 1) != ink.colRange(1, w));
  if (h > 1) edges += cv::countNonZero(ink.rowRange(0, h - 1) != ink.rowRange(1, h));
  return 2.0 * area / edges;
}

/// Brings the stroke width of the ink in `patch` (at its own resolution, to be scaled by `scale`
/// to the 20 px box) into the range of MNIST's strokes: thin pens are thickened, markers thinned
/// (grey-level dilation / erosion, so antialiasing is kept). Returns the patch cropped to its ink.
cv::Mat normalise_stroke(cv::Mat patch, double scale) {
  const double width = stroke_width(patch) * scale;  // in 28x28 pixels
  double target = 0;
  if (width > 0 && width < kThinStroke) target = kThinStroke + 0.3;
  if (width > kThickStroke) target = kThickStroke - 0.3;
  if (target == 0) return patch;
  const int r = static_cast<int>(std::lround(std::abs(target - width) / scale / 2));
  if (r < 1) return patch;
  const cv::Mat kernel =
      cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * r + 1, 2 * r + 1));
  cv::Mat out;
  if (target > width) {
    cv::copyMakeBorder(patch, out, r, r, r, r, cv::BORDER_CONSTANT, 0);
    cv::dilate(out, out, kernel);
  } else {
    cv::erode(patch, out, kernel);
  }
  cv::Mat nz;
  cv::findNonZero(out > 0.5 / 255, nz);
  if (nz.empty()) return patch;
  return out(cv::boundingRect(nz)).clone();
}

/// Places `patch` (float, ink in [0, 1]) in a 28x28 frame with its mass (or, not `by_mass`, its box
/// centre) at (14, 14). When the patch
/// comes unresampled from a 28x28 frame, `keep` is its offset there: kept if it centres the mass to
/// within rounding (MNIST's own centring rounds either way at half a pixel).
cv::Mat centre_in_frame(const cv::Mat& patch, const cv::Point* keep, bool by_mass) {
  const cv::Moments m = cv::moments(patch);
  double cx = (patch.cols - 1) / 2.0;
  double cy = (patch.rows - 1) / 2.0;
  if (by_mass && m.m00 > 0) {
    cx = m.m10 / m.m00;
    cy = m.m01 / m.m00;
  }
  int ox =
      std::clamp(static_cast<int>(std::lround(kDigitCentre - cx)), 0, kDigitFrame - patch.cols);
  int oy =
      std::clamp(static_cast<int>(std::lround(kDigitCentre - cy)), 0, kDigitFrame - patch.rows);
  constexpr double kRounding = 0.75;
  if (keep && std::abs(keep->x + cx - kDigitCentre) <= kRounding &&
      std::abs(keep->y + cy - kDigitCentre) <= kRounding) {
    ox = keep->x;
    oy = keep->y;
  }
  cv::Mat frame = cv::Mat::zeros(kDigitFrame, kDigitFrame, CV_32F);
  patch.copyTo(frame(cv::Rect(ox, oy, patch.cols, patch.rows)));
  cv::Mat out;
  frame.convertTo(out, CV_8U, 255.0);  // rounds and saturates
  return out;
}

/// 8- and 16-bit images larger than the working size, reduced to it by a whole factor (cropped to
/// a multiple of it first: at most factor - 1 pixels at the right and bottom edges; OpenCV's area
/// resize then takes plain block means), `*scale` set to 1 / factor; others as they are, scale 1.
/// Both routes start from this one reduction.
cv::Mat reduce_to_working_size(const cv::Mat& image, double* scale) {
  *scale = 1.0;
  const int longer = std::max(image.rows, image.cols);
  if (longer <= kWorkingSide || (image.depth() != CV_8U && image.depth() != CV_16U)) return image;
  const int factor = (longer + kWorkingSide - 1) / kWorkingSide;
  *scale = 1.0 / factor;
  const cv::Size size(std::max(1, image.cols / factor), std::max(1, image.rows / factor));
  const cv::Rect whole(0, 0, std::min(image.cols, size.width * factor),
                       std::min(image.rows, size.height * factor));
  cv::Mat out;
  cv::resize(image(whole), out, size, 0, 0, cv::INTER_AREA);
  return out;
}

/// The robust route's input as float in [0, 1] at the working size: `image` from
/// reduce_to_working_size, so only other depths can still be larger (reduced here, as float;
/// `*scale` multiplied accordingly).
cv::Mat working_float(const cv::Mat& image, double* scale) {
  cv::Mat f = to_unit_float(image);
  const int longer = std::max(image.rows, image.cols);
  if (longer <= kWorkingSide) return f;
  const double s = static_cast<double>(kWorkingSide) / longer;
  *scale *= s;
  // At least one pixel each way: a very long, thin image's short side would round to none (found
  // by fuzzing: tests/fuzz/regressions/image/).
  const cv::Size size(std::max(1, static_cast<int>(std::lround(image.cols * s))),
                      std::max(1, static_cast<int>(std::lround(image.rows * s))));
  cv::resize(f, f, size, 0, 0, cv::INTER_AREA);
  return f;
}

using ProfileClock = std::chrono::steady_clock;

/// Milliseconds since `*t`, which becomes now.
double lap(ProfileClock::time_point* t) {
  const auto now = ProfileClock::now();
  const double ms = std::chrono::duration<double, std::milli>(now - *t).count();
  *t = now;
  return ms;
}

}  // namespace

DecodeLimits digit_decode_limits() {
  DecodeLimits limits;
  limits.reduce_to = kWorkingSide;
  return limits;
}

Framing framing_for(const std::string& dataset) {
  Framing f;
  if (dataset == "fashion-mnist") {
    f.box = kDigitFrame;
    f.centre_by_mass = false;
    f.normalise_stroke = false;
  }
  return f;
}

Preprocessed preprocess_digit(const cv::Mat& image, const std::string& name, const Framing& framing,
                              PreprocessProfile* profile, Route route) {
  if (image.empty() || image.rows < 1 || image.cols < 1) throw DataError(name + ": empty image");
  PreprocessProfile times;
  auto clock = ProfileClock::now();
  double scale = 1.0;
  const cv::Mat reduced = reduce_to_working_size(image, &scale);
  times.resize = lap(&clock);
  std::optional<InkMap> clean;
  if (route == Route::kChoose) clean = clean_ink(reduced, true);
  const bool clean_route = clean.has_value();
  InkMap ink;
  bool transparent = false;
  if (clean_route) {
    ink = std::move(*clean);
    times.background = lap(&clock);  // the test and the ink map are one pass
  } else {
    cv::Mat f = working_float(reduced, &scale);
    const int channels = f.channels();
    if (channels == 2 || channels == 4) {
      std::vector<cv::Mat> planes;
      cv::split(f, planes);
      cv::Mat alpha = planes.back();
      planes.pop_back();
      const double clear = cv::countNonZero(alpha < 0.5) / static_cast<double>(alpha.total());
      transparent = clear >= 0.005 && clear < 1.0;
      if (transparent) {
        ink.v = alpha;  // the opaque part is the ink, whatever its colour
      } else if (planes.size() == 1) {
        f = planes[0];
      } else {
        cv::merge(planes, f);
      }
    }
    times.resize += lap(&clock);  // (with the failed clean test, a pass over the reduced image)
    if (!transparent) ink = ink_from_colour(f);
    times.background = lap(&clock);
  }
  // (The clean route's map covers part of `reduced`; the robust route's all of its working image.)
  const int side =
      ink.region.empty() ? std::max(ink.v.rows, ink.v.cols) : std::max(reduced.rows, reduced.cols);
  std::optional<cv::Mat> isolated = isolate_digit(ink, side, name);
  if (!isolated) {  // the clean route's neighbourhood was not enough: the whole map
    ink = *clean_ink(reduced, false);
    isolated = isolate_digit(ink, side, name);
  }
  const cv::Mat& digit = *isolated;
  times.threshold = lap(&clock);

  // The box of the ink above half a grey level, in the working image.
  const cv::Rect in_map = cv::boundingRect(digit > 0.5 / 255);
  const cv::Rect found = in_map + ink.region.tl();
  cv::Rect box = found;
  cv::Mat patch = digit(in_map).clone();
  int longer = std::max(box.width, box.height);
  // MNIST's own crops have a longer side of 20 (rarely 19): leave those exactly as they are.
  const int target = framing.box;
  const bool resample = longer != target && longer != target - 1;
  if (resample) {
    if (framing.normalise_stroke)
      patch = normalise_stroke(patch, static_cast<double>(target) / longer);
    box = cv::Rect(0, 0, patch.cols, patch.rows);
    longer = std::max(box.width, box.height);
    const double s = static_cast<double>(target) / longer;
    const cv::Size size(std::clamp(static_cast<int>(std::lround(box.width * s)), 1, target),
                        std::clamp(static_cast<int>(std::lround(box.height * s)), 1, target));
    cv::resize(patch, patch, size, 0, 0, s < 1 ? cv::INTER_AREA : cv::INTER_LINEAR);
    double hi = 0;
    cv::minMaxLoc(patch, nullptr, &hi);
    if (hi > 0) patch /= hi;  // thin strokes averaged down to grey get their full intensity back
  }
  Preprocessed out;
  const bool mnist_frame =
      !resample && scale == 1.0 && image.rows == kDigitFrame && image.cols == kDigitFrame;
  const cv::Point original = found.tl();
  out.digit = centre_in_frame(patch, mnist_frame ? &original : nullptr, framing.centre_by_mass);
  out.ink_box = cv::Rect(static_cast<int>(found.x / scale), static_cast<int>(found.y / scale),
                         static_cast<int>(std::ceil(found.width / scale)),
                         static_cast<int>(std::ceil(found.height / scale))) &
                cv::Rect(0, 0, image.cols, image.rows);
  out.dark_on_light = !transparent && ink.dark;
  out.clean_route = clean_route;
  times.crop = lap(&clock);
  if (profile) *profile = times;
  return out;
}

namespace {

cv::Mat to_8bit(const cv::Mat& image) {
  cv::Mat img = image;
  if (img.depth() == CV_16U) img.convertTo(img, CV_8U, 1.0 / 257);
  if (img.depth() != CV_8U) {
    cv::Mat f = to_unit_float(img);
    f.convertTo(img, CV_8U, 255.0);
  }
  return img;
}

}  // namespace

cv::Mat naive_preprocess(const cv::Mat& image) {
  const cv::Mat img = to_8bit(image);
  cv::Mat gray;
  if (img.channels() == 4) {
    cv::cvtColor(img, gray, cv::COLOR_BGRA2GRAY);
  } else if (img.channels() == 3) {
    cv::cvtColor(img, gray, cv::COLOR_BGR2GRAY);
  } else if (img.channels() == 2) {
    cv::extractChannel(img, gray, 0);
  } else {
    gray = img;
  }
  cv::Mat out;
  cv::resize(gray, out, cv::Size(kDigitFrame, kDigitFrame), 0, 0, cv::INTER_LINEAR);
  return out;
}

cv::Mat resize_preprocess(const cv::Mat& image, int channels, int height, int width) {
  CV_Assert(channels == 1 || channels == 3);
  const cv::Mat img = to_8bit(image);
  cv::Mat converted;
  const int have = img.channels();
  if (channels == 1) {
    if (have == 4) {
      cv::cvtColor(img, converted, cv::COLOR_BGRA2GRAY);
    } else if (have == 3) {
      cv::cvtColor(img, converted, cv::COLOR_BGR2GRAY);
    } else if (have == 2) {
      cv::extractChannel(img, converted, 0);
    } else {
      converted = img;
    }
  } else {
    if (have == 4) {
      cv::cvtColor(img, converted, cv::COLOR_BGRA2BGR);
    } else if (have == 3) {
      converted = img;
    } else {
      cv::Mat gray = img;
      if (have == 2) cv::extractChannel(img, gray, 0);
      cv::cvtColor(gray, converted, cv::COLOR_GRAY2BGR);
    }
  }
  if (converted.rows == height && converted.cols == width) return converted.clone();
  const bool shrinking = converted.rows * converted.cols > height * width;
  cv::Mat out;
  cv::resize(converted, out, cv::Size(width, height), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

cv::Mat folder_preprocess(const cv::Mat& image, const std::string& name, bool digit, int channels,
                          int height, int width, cv::Rect* ink_box) {
  if (!digit) return resize_preprocess(image, channels, height, width);
  const Preprocessed p = preprocess_digit(image, name);
  if (ink_box) *ink_box = p.ink_box;
  return resize_preprocess(p.digit, channels, height, width);
}

void copy_image_to(const cv::Mat& image, uint8_t* out) {
  CV_Assert(image.type() == CV_8UC1 || image.type() == CV_8UC3);
  if (image.channels() == 1) {
    cv::Mat dst(image.rows, image.cols, CV_8UC1, out);
    image.copyTo(dst);
  } else {
    cv::Mat dst(image.rows, image.cols, CV_8UC3, out);
    cv::cvtColor(image, dst, cv::COLOR_BGR2RGB);
  }
}

at::Tensor images_to_tensor(const std::vector<cv::Mat>& images) {
  CV_Assert(!images.empty());
  const int64_t h = images[0].rows, w = images[0].cols, c = images[0].channels();
  auto out = c == 1 ? torch::empty({static_cast<int64_t>(images.size()), h, w}, torch::kUInt8)
                    : torch::empty({static_cast<int64_t>(images.size()), h, w, c}, torch::kUInt8);
  for (size_t i = 0; i < images.size(); ++i) {
    CV_Assert(images[i].rows == h && images[i].cols == w && images[i].channels() == c);
    copy_image_to(images[i], out[static_cast<int64_t>(i)].data_ptr<uint8_t>());
  }
  return out;
}

at::Tensor digits_to_tensor(const std::vector<cv::Mat>& digits) {
  auto out =
      torch::empty({static_cast<int64_t>(digits.size()), kDigitFrame, kDigitFrame}, torch::kUInt8);
  for (size_t i = 0; i < digits.size(); ++i) {
    CV_Assert(digits[i].type() == CV_8UC1 && digits[i].rows == kDigitFrame &&
              digits[i].cols == kDigitFrame);
    cv::Mat dst(kDigitFrame, kDigitFrame, CV_8U, out[static_cast<int64_t>(i)].data_ptr<uint8_t>());
    digits[i].copyTo(dst);
  }
  return out;
}

}  // namespace mnist::vision
