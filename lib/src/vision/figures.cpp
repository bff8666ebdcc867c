#include "mnist/vision/figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>

#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include "mnist/vision/canvas.h"

namespace mnist::vision {
namespace {

constexpr double kSmall = 0.42;   // tick labels, captions
constexpr double kMedium = 0.55;  // axis labels, legends
constexpr double kLarge = 0.7;    // titles

std::string percent(double fraction, int decimals = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals, 100.0 * fraction);
  return buf;
}

// A grid of image tiles with up to two caption lines under each.
struct Tile {
  int64_t index;
  std::string line1, line2;
  cv::Scalar color2 = kAxis;
};

void write_tile_grid(const std::string& path, const std::string& title, const Dataset& data,
                     const std::vector<Tile>& tiles, int columns) {
  // Tiles of about 84 pixels on the longer side (MNIST's 28 x 3), gray or colour.
  constexpr double kTileSide = 84.0;
  const int h = static_cast<int>(data.images.size(1)), w = static_cast<int>(data.images.size(2));
  const bool colour = data.images.dim() == 4;
  const double scale = kTileSide / std::max(h, w);
  const int tile_w = std::max(1, static_cast<int>(std::lround(w * scale)));
  const int tile_h = std::max(1, static_cast<int>(std::lround(h * scale)));
  int text_w = 112;  // room for "pred 4 100.0%"
  for (const auto& t : tiles) {
    text_w = std::max({text_w, text_width(t.line1, kSmall + 0.06), text_width(t.line2, kSmall)});
  }
  const int cell_w = std::max(tile_w, text_w) + 8;
  const int caption = tiles.empty() || tiles[0].line2.empty() ? 20 : 36;
  const int cell_h = tile_h + caption + 6;
  const int rows = std::max(1, static_cast<int>((tiles.size() + columns - 1) / columns));
  cv::Mat img(48 + rows * cell_h + 6, columns * cell_w + 8, CV_8UC3, kWhite);
  put_text_centered(img, title, img.cols / 2, 30, kLarge, kBlack, 2);
  const auto images = data.images.contiguous();
  for (size_t i = 0; i < tiles.size(); ++i) {
    const int x = 4 + static_cast<int>(i % columns) * cell_w,
              y = 48 + static_cast<int>(i / columns) * cell_h;
    auto* pixels = images[tiles[i].index].data_ptr<uint8_t>();
    cv::Mat tile;
    if (!colour && scale == 3.0) {
      tile = gray_tile(pixels, h, w, 3);
    } else {
      cv::Mat bgr;
      if (colour) {
        cv::cvtColor(cv::Mat(h, w, CV_8UC3, pixels), bgr, cv::COLOR_RGB2BGR);
      } else {
        cv::cvtColor(cv::Mat(h, w, CV_8UC1, pixels), bgr, cv::COLOR_GRAY2BGR);
      }
      cv::resize(bgr, tile, {tile_w, tile_h}, 0, 0,
                 scale >= 1 ? cv::INTER_NEAREST : cv::INTER_AREA);
    }
    const int tx = x + (cell_w - tile.cols) / 2;
    tile.copyTo(img(cv::Rect(tx, y, tile.cols, tile.rows)));
    put_text_centered(img, tiles[i].line1, x + cell_w / 2, y + tile.rows + 15, kSmall + 0.06,
                      kBlack, 1);
    if (!tiles[i].line2.empty()) {
      put_text_centered(img, tiles[i].line2, x + cell_w / 2, y + tile.rows + 31, kSmall,
                        tiles[i].color2, 1);
    }
  }
  save_png(img, path);
}

// One panel of a line chart: series of (epoch, value), axes with ticks, a legend.
struct Series {
  std::string name;
  std::vector<double> x, y;
  cv::Scalar color;
};

void draw_panel(cv::Mat& img, cv::Rect area, const std::string& title, const std::string& ylabel,
                const std::vector<Series>& series, bool as_percent, bool legend_at_bottom) {
  const cv::Rect plot(area.x + 78, area.y + 40, area.width - 98, area.height - 95);
  double xmin = 1, xmax = 1, ymin = INFINITY, ymax = -INFINITY;
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      xmax = std::max(xmax, s.x[i]);
      ymin = std::min(ymin, s.y[i]);
      ymax = std::max(ymax, s.y[i]);
    }
  }
  if (!std::isfinite(ymin)) ymin = 0, ymax = 1;
  const double pad = std::max((ymax - ymin) * 0.08, 1e-4);
  ymin -= pad;
  ymax += pad;
  if (xmax <= xmin) {  // one epoch: centre it
    xmin -= 0.5;
    xmax += 0.5;
  }
  auto px = [&](double x) {
    return plot.x + static_cast<int>(std::lround((x - xmin) / (xmax - xmin) * plot.width));
  };
  auto py = [&](double y) {
    return plot.y + plot.height -
           static_cast<int>(std::lround((y - ymin) / (ymax - ymin) * plot.height));
  };

  put_text_centered(img, title, plot.x + plot.width / 2, area.y + 26, kLarge, kBlack, 2);
  const auto yticks = nice_ticks(ymin, ymax, 7);
  const double ystep = yticks.size() > 1 ? yticks[1] - yticks[0] : 1.0;
  for (double v : yticks) {
    if (v < ymin || v > ymax) continue;
    cv::line(img, {plot.x, py(v)}, {plot.x + plot.width, py(v)}, kGrid, 1);
    const std::string label =
        as_percent ? tick_label(100 * v, 100 * ystep) + "%" : tick_label(v, ystep);
    put_text_right(img, label, plot.x - 6, py(v) + 5, kSmall, kAxis);
  }
  // Whole epochs only, at most about ten labels, the last epoch included (nice_ticks' rounding
  // could drop it).
  const double xstep = std::max(1.0, std::ceil((xmax - xmin) / 10.0));
  for (double v = std::ceil(xmin - 1e-9); v <= xmax + 1e-9; v += xstep) {
    cv::line(img, {px(v), plot.y + plot.height}, {px(v), plot.y + plot.height + 5}, kAxis, 1);
    put_text_centered(img, tick_label(v, 1), px(v), plot.y + plot.height + 20, kSmall, kAxis);
  }
  cv::rectangle(img, plot, kAxis, 1);
  put_text_centered(img, "epoch", plot.x + plot.width / 2, plot.y + plot.height + 42, kMedium,
                    kBlack);
  // A vertical label: drawn horizontally on its own image, rotated, pasted left of the axis.
  cv::Mat label(22, text_width(ylabel, kMedium) + 8, CV_8UC3, kWhite);
  put_text_centered(label, ylabel, label.cols / 2, 16, kMedium, kBlack);
  cv::rotate(label, label, cv::ROTATE_90_COUNTERCLOCKWISE);
  const int ly = std::max(area.y, plot.y + plot.height / 2 - label.rows / 2);
  label.copyTo(img(cv::Rect(area.x + 4, ly, label.cols, std::min(label.rows, img.rows - ly))));

  // The legend goes where the curves are not: top right for falling ones, bottom right for rising
  // ones.
  int legend_y = legend_at_bottom
                     ? plot.y + plot.height - 12 - 20 * static_cast<int>(series.size() - 1)
                     : plot.y + 18;
  for (const auto& s : series) {
    std::vector<cv::Point> points;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (std::isfinite(s.y[i])) points.emplace_back(px(s.x[i]), py(s.y[i]));
    }
    if (points.empty()) continue;
    cv::polylines(img, points, false, s.color, 2, cv::LINE_AA);
    for (const auto& p : points) cv::circle(img, p, 4, s.color, cv::FILLED, cv::LINE_AA);
    // Legend, top right inside the plot, with the final value.
    char text[96];
    const double last = s.y.back();
    std::snprintf(text, sizeof text, "%s (last %s)", s.name.c_str(),
                  as_percent ? percent(last, 2).c_str() : tick_label(last, 0.0001).c_str());
    const int tx = plot.x + plot.width - 12 - text_width(text, kSmall);
    cv::line(img, {tx - 30, legend_y - 5}, {tx - 6, legend_y - 5}, s.color, 2, cv::LINE_AA);
    cv::circle(img, {tx - 18, legend_y - 5}, 4, s.color, cv::FILLED, cv::LINE_AA);
    cv::putText(img, text, {tx, legend_y}, cv::FONT_HERSHEY_SIMPLEX, kSmall, kBlack, 1,
                cv::LINE_AA);
    legend_y += 20;
  }
}

}  // namespace

void write_sample_grid(const std::string& path, const Dataset& data, const DatasetInfo& info,
                       int count) {
  // Evenly spaced through the split: MNIST's files are in no order, but an image folder's are
  // sorted by class, and the first images would all be of the first class.
  std::vector<Tile> tiles;
  const auto labels = data.labels.to(torch::kCPU);
  const int64_t n = data.size(), shown = std::min<int64_t>(count, n);
  for (int64_t t = 0; t < shown; ++t) {
    const int64_t i = n == shown ? t : t * n / shown;
    tiles.push_back({i, info.class_names.at(static_cast<size_t>(labels[i].item<int64_t>())), ""});
  }
  const bool folder = info.name == dataset_info(DatasetName::kFolder).name;
  write_tile_grid(path,
                  folder ? "Training samples with their labels"
                         : "Training samples (" + info.name + ") with their labels",
                  data, tiles, 10);
}

void write_training_curves(const std::string& path, const std::vector<EpochStats>& history) {
  Series train_loss{"train", {}, {}, kBlue}, val_loss{"validation", {}, {}, kOrange};
  Series train_acc{"train", {}, {}, kBlue}, val_acc{"validation", {}, {}, kOrange};
  for (const auto& s : history) {
    const double e = static_cast<double>(s.epoch);
    for (auto* series : {&train_loss, &val_loss, &train_acc, &val_acc}) series->x.push_back(e);
    train_loss.y.push_back(s.train_loss);
    val_loss.y.push_back(s.val_loss);
    train_acc.y.push_back(s.train_accuracy);
    val_acc.y.push_back(s.val_accuracy);
  }
  cv::Mat img(460, 1200, CV_8UC3, kWhite);
  draw_panel(img, {0, 0, 600, 460}, "Loss", "loss", {train_loss, val_loss}, false, false);
  draw_panel(img, {600, 0, 600, 460}, "Accuracy", "accuracy", {train_acc, val_acc}, true, true);
  save_png(img, path);
}

void write_confusion_heatmap(const std::string& path, const at::Tensor& confusion,
                             const DatasetInfo& info) {
  const auto c = confusion.to(torch::kCPU).to(torch::kInt64).contiguous();
  const int k = static_cast<int>(c.size(0));
  constexpr int kCell = 52;
  // Row labels: the class name, with the index the columns use when the name is not the index.
  std::vector<std::string> row_labels;
  for (size_t i = 0; i < info.class_names.size(); ++i) {
    const auto& name = info.class_names[i];
    row_labels.push_back(name == std::to_string(i) ? name : name + " (" + std::to_string(i) + ")");
  }
  int name_w = 0;
  for (const auto& label : row_labels) name_w = std::max(name_w, text_width(label, kMedium));
  const int left = name_w + 70, top = 70;
  cv::Mat img(top + k * kCell + 70, left + k * kCell + 30, CV_8UC3, kWhite);
  const auto acc = c.accessor<int64_t, 2>();
  int64_t total = 0, hits = 0;
  for (int i = 0; i < k; ++i) {
    int64_t row = 0;
    for (int j = 0; j < k; ++j) row += acc[i][j];
    total += row;
    hits += acc[i][i];
    for (int j = 0; j < k; ++j) {
      // Shade by the row's share (0..1), with a square root so that small confusions stay visible.
      const double share =
          row > 0 ? static_cast<double>(acc[i][j]) / static_cast<double>(row) : 0.0;
      const double t = std::sqrt(share);
      const cv::Rect cell(left + j * kCell, top + i * kCell, kCell, kCell);
      cv::rectangle(img, cell, blues(t), cv::FILLED);
      cv::rectangle(img, cell, kGrid, 1);
      if (acc[i][j] > 0) {
        put_text_centered(img, std::to_string(acc[i][j]), cell.x + kCell / 2,
                          cell.y + kCell / 2 + 5, kSmall, t > 0.55 ? kWhite : kBlack,
                          i == j ? 2 : 1);
      }
    }
    put_text_right(img, row_labels[static_cast<size_t>(i)], left - 8,
                   top + i * kCell + kCell / 2 + 6, kMedium, kBlack);
    put_text_centered(img, std::to_string(i), left + i * kCell + kCell / 2, top + k * kCell + 20,
                      kMedium, kBlack);
  }
  const std::string title =
      "Confusion matrix (test accuracy " +
      percent(total > 0 ? static_cast<double>(hits) / static_cast<double>(total) : 0.0, 2) + ")";
  put_text_centered(img, title, img.cols / 2, 32, kLarge, kBlack, 2);
  put_text_centered(img, "predicted class", left + k * kCell / 2, top + k * kCell + 50, kMedium,
                    kBlack);
  cv::Mat label(22, text_width("true class", kMedium) + 8, CV_8UC3, kWhite);
  put_text_centered(label, "true class", label.cols / 2, 16, kMedium, kBlack);
  cv::rotate(label, label, cv::ROTATE_90_COUNTERCLOCKWISE);
  label.copyTo(img(cv::Rect(8, top + k * kCell / 2 - label.rows / 2, label.cols, label.rows)));
  save_png(img, path);
}

void write_misclassified(const std::string& path, const Dataset& test, const EvalResult& result,
                         const DatasetInfo& info, int count) {
  const auto labels = test.labels.to(torch::kCPU).contiguous();
  const auto* y = labels.data_ptr<int64_t>();
  const auto* pred = result.predictions.data_ptr<int64_t>();
  const auto probs = result.probabilities.contiguous();
  const int64_t k = probs.size(1);
  const auto* p = probs.data_ptr<float>();
  std::vector<int64_t> wrong;
  for (int64_t i = 0; i < result.count; ++i) {
    if (pred[i] != y[i]) wrong.push_back(i);
  }
  // Most confidently wrong first: the mistakes that matter.
  std::stable_sort(wrong.begin(), wrong.end(),
                   [&](int64_t a, int64_t b) { return p[a * k + pred[a]] > p[b * k + pred[b]]; });
  std::vector<Tile> tiles;
  for (size_t i = 0; i < std::min<size_t>(wrong.size(), static_cast<size_t>(count)); ++i) {
    const int64_t idx = wrong[i];
    tiles.push_back({idx, "true " + info.class_names[static_cast<size_t>(y[idx])],
                     "pred " + info.class_names[static_cast<size_t>(pred[idx])] + " " +
                         percent(p[idx * k + pred[idx]], 1),
                     kRed});
  }
  const std::string title = std::to_string(wrong.size()) + " misclassified test images of " +
                            std::to_string(result.count) + " (most confident first)";
  write_tile_grid(path, title, test, tiles, 10);
}

void write_run_figures(const RunFolder& run, const Splits& data,
                       const std::vector<EpochStats>& history, const EvalResult& result) {
  const auto plot = [&](const char* name) {
    return run.file(std::string(run_files::kPlots) + "/" + name);
  };
  std::filesystem::create_directories(run.file(run_files::kPlots));
  write_sample_grid(plot("samples.png"), data.train, data.info);
  write_training_curves(plot("curves.png"), history);
  write_confusion_heatmap(plot("confusion.png"), result.confusion, data.info);
  write_misclassified(plot("misclassified.png"), data.test, result, data.info);
}

}  // namespace mnist::vision
