#include "mnist/vision/predict_window.h"

#include <algorithm>
#include <cstdio>

#include <opencv2/highgui.hpp>
#include <opencv2/imgproc.hpp>

#include "mnist/core/error.h"
#include "mnist/vision/attribution.h"
#include "mnist/vision/canvas.h"
#include "mnist/vision/preprocess.h"

namespace mnist::vision {
namespace {

constexpr int kMargin = 20;
constexpr int kHeader = 64;
constexpr int kFooter = 40;
constexpr int kPanel = 300;  // the user's image / the canvas
constexpr int kInputScale = 10;
constexpr int kChart = 330;
constexpr int kWidth = kMargin * 4 + kPanel + 28 * kInputScale + kChart;
constexpr int kHeight = kHeader + kMargin + kPanel + 30 + kFooter;
const cv::Scalar kPanelBg(238, 238, 238);

/// Any decoded image as 8-bit BGR for display; transparency shown over a light checkerboard.
cv::Mat displayable(const cv::Mat& image) {
  cv::Mat img = image;
  if (img.depth() == CV_16U) {
    img.convertTo(img, CV_8U, 1.0 / 257);
  } else if (img.depth() != CV_8U) {
    cv::normalize(img, img, 0, 255, cv::NORM_MINMAX, CV_8U);
  }
  cv::Mat bgr;
  if (img.channels() == 1) {
    cv::cvtColor(img, bgr, cv::COLOR_GRAY2BGR);
  } else if (img.channels() == 3) {
    bgr = img.clone();
  } else {
    std::vector<cv::Mat> ch;
    cv::split(img, ch);
    cv::Mat alpha = ch.back();
    ch.pop_back();
    cv::Mat colour;
    if (ch.size() == 1) {
      cv::cvtColor(ch[0], colour, cv::COLOR_GRAY2BGR);
    } else {
      cv::merge(ch, colour);
    }
    cv::Mat checker(img.size(), CV_8UC3);
    for (int y = 0; y < img.rows; ++y) {
      for (int x = 0; x < img.cols; ++x) {
        const uint8_t v = ((x / 8 + y / 8) % 2) ? 205 : 245;
        checker.at<cv::Vec3b>(y, x) = {v, v, v};
      }
    }
    cv::Mat a3, af;
    cv::cvtColor(alpha, a3, cv::COLOR_GRAY2BGR);
    a3.convertTo(af, CV_32FC3, 1.0 / 255);
    cv::Mat cf, kf;
    colour.convertTo(cf, CV_32FC3);
    checker.convertTo(kf, CV_32FC3);
    cv::Mat mixed = cf.mul(af) + kf.mul(cv::Scalar::all(1.0) - af);
    mixed.convertTo(bgr, CV_8UC3);
  }
  return bgr;
}

/// `img` (BGR) fitted into a `side` square (aspect kept), pasted at `at`; returns the scale used.
double paste_fitted(cv::Mat& view, const cv::Mat& img, cv::Point at, int side = kPanel) {
  view(cv::Rect(at.x, at.y, side, side)) = kPanelBg;
  const double s =
      std::min(static_cast<double>(side) / img.cols, static_cast<double>(side) / img.rows);
  cv::Mat fitted;
  cv::resize(img, fitted,
             cv::Size(std::max(1, static_cast<int>(img.cols * s)),
                      std::max(1, static_cast<int>(img.rows * s))),
             0, 0, s < 1 ? cv::INTER_AREA : cv::INTER_NEAREST);
  const cv::Point off(at.x + (side - fitted.cols) / 2, at.y + (side - fitted.rows) / 2);
  fitted.copyTo(view(cv::Rect(off.x, off.y, fitted.cols, fitted.rows)));
  return s;
}

void draw_input(cv::Mat& view, const cv::Mat& input, const cv::Mat& why = cv::Mat(),
                const std::string& why_caption = "") {
  const int x = kMargin * 2 + kPanel;
  const int y = kHeader + kMargin;
  const int side = 28 * kInputScale;
  std::string caption = "what the model saw";
  if (!why.empty() && !input.empty()) {
    paste_fitted(view, why, {x, y}, side);
    caption = why_caption;
  } else if (input.empty()) {
    view(cv::Rect(x, y, side, side)) = kPanelBg;
  } else if (input.type() == CV_8UC1 && input.rows == 28 && input.cols == 28) {
    gray_tile(input.ptr<uint8_t>(), 28, 28, kInputScale).copyTo(view(cv::Rect(x, y, side, side)));
    caption += " (28x28)";
  } else {  // a folder-trained model's input: its own size, gray or colour, scaled to fit
    cv::Mat bgr = input;
    if (input.channels() == 1) cv::cvtColor(input, bgr, cv::COLOR_GRAY2BGR);
    paste_fitted(view, bgr, {x, y}, side);
    caption += " (" + std::to_string(input.rows) + "x" + std::to_string(input.cols) + ")";
  }
  put_text_centered(view, caption, x + side / 2, y + kPanel + 18, 0.5, kAxis);
}

std::string why_caption(const ImageResult& r, const DatasetInfo& info) {
  if (!r.ok() || r.predicted < 0) return "";
  return "why " + info.class_names[static_cast<size_t>(r.predicted)] + ": red up, blue down";
}

void draw_chart(cv::Mat& view, const ImageResult* r, const DatasetInfo& info) {
  const int x0 = kMargin * 3 + kPanel + 28 * kInputScale;
  const int y0 = kHeader + kMargin;
  const int n = static_cast<int>(info.num_classes());
  const int row = kPanel / n;
  int label_w = 0;
  for (const auto& name : info.class_names) label_w = std::max(label_w, text_width(name, 0.5));
  const int bar_x = x0 + label_w + 8;
  const int bar_max = kChart - label_w - 8 - 62;
  for (int k = 0; k < n; ++k) {
    const int y = y0 + k * row;
    const double p = r ? r->probabilities[static_cast<size_t>(k)] : 0.0;
    const bool best = r && k == r->predicted;
    put_text_right(view, info.class_names[static_cast<size_t>(k)], x0 + label_w, y + row / 2 + 6,
                   0.5, best ? kBlack : kAxis, best ? 2 : 1);
    cv::rectangle(view, cv::Rect(bar_x, y + 4, bar_max, row - 8), kGrid, cv::FILLED);
    const int len = static_cast<int>(p * bar_max + 0.5);
    if (len > 0) {
      cv::rectangle(view, cv::Rect(bar_x, y + 4, len, row - 8), best ? kOrange : kBlue, cv::FILLED);
    }
    char pct[16];
    std::snprintf(pct, sizeof pct, "%.1f%%", 100.0 * p);
    cv::putText(view, pct, {bar_x + bar_max + 6, y + row / 2 + 5}, cv::FONT_HERSHEY_SIMPLEX, 0.45,
                kAxis, 1, cv::LINE_AA);
  }
  put_text_centered(view, "class probabilities", x0 + kChart / 2, y0 + kPanel + 18, 0.5, kAxis);
}

void draw_header(cv::Mat& view, const std::string& title, const ImageResult* r,
                 const DatasetInfo& info) {
  cv::putText(view, title, {kMargin, 26}, cv::FONT_HERSHEY_SIMPLEX, 0.55, kAxis, 1, cv::LINE_AA);
  if (r && !r->ok()) {
    std::string msg = "error: " + r->error;
    while (msg.size() > 12 && text_width(msg, 0.55) > kWidth - 2 * kMargin) {
      msg = msg.substr(0, msg.size() - 4) + "...";
    }
    cv::putText(view, msg, {kMargin, 52}, cv::FONT_HERSHEY_SIMPLEX, 0.55, kRed, 1, cv::LINE_AA);
    return;
  }
  if (r) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "prediction: %s   confidence %.1f%%",
                  info.class_names.at(static_cast<size_t>(r->predicted)).c_str(),
                  100.0 * r->confidence);
    cv::putText(view, buf, {kMargin, 54}, cv::FONT_HERSHEY_SIMPLEX, 0.8, kBlack, 2, cv::LINE_AA);
  }
}

void draw_footer(cv::Mat& view, const std::string& keys) {
  cv::putText(view, keys, {kMargin, kHeight - 14}, cv::FONT_HERSHEY_SIMPLEX, 0.5, kAxis, 1,
              cv::LINE_AA);
}

std::string short_name(const std::string& path) {
  std::string s = path;
  while (s.size() > 16 && text_width(s, 0.55) > kWidth - 2 * kMargin - 120) s = "..." + s.substr(4);
  return s;
}

}  // namespace

cv::Rect draw_canvas_rect() {
  return {kMargin + (kPanel - kDrawCanvasSide) / 2,
          kHeader + kMargin + (kPanel - kDrawCanvasSide) / 2, kDrawCanvasSide, kDrawCanvasSide};
}

cv::Mat render_file_view(const ImageResult& r, const DatasetInfo& info, const std::string& position,
                         const cv::Mat& why) {
  cv::Mat view(kHeight, kWidth, CV_8UC3, kWhite);
  draw_header(view, position + "  " + short_name(r.path), &r, info);
  const cv::Point at(kMargin, kHeader + kMargin);
  if (r.image.empty()) {
    view(cv::Rect(at.x, at.y, kPanel, kPanel)) = kPanelBg;
    put_text_centered(view, "no image", at.x + kPanel / 2, at.y + kPanel / 2, 0.7, kAxis);
  } else {
    const double s = paste_fitted(view, displayable(r.image), at);
    if (r.ok() && !r.ink_box.empty()) {
      const cv::Point off(at.x + (kPanel - static_cast<int>(r.image.cols * s)) / 2,
                          at.y + (kPanel - static_cast<int>(r.image.rows * s)) / 2);
      const cv::Rect box(off.x + static_cast<int>(r.ink_box.x * s),
                         off.y + static_cast<int>(r.ink_box.y * s),
                         std::max(1, static_cast<int>(r.ink_box.width * s)),
                         std::max(1, static_cast<int>(r.ink_box.height * s)));
      cv::rectangle(view, box, kGreen, 1);
    }
  }
  put_text_centered(view, "your image", at.x + kPanel / 2, at.y + kPanel + 18, 0.5, kAxis);
  draw_input(view, r.input, why, why_caption(r, info));
  draw_chart(view, r.ok() ? &r : nullptr, info);
  draw_footer(view, "n / Right: next   p / Left: previous   d: draw   e: explain   q / Esc: quit");
  return view;
}

cv::Mat render_draw_view(const cv::Mat& canvas, const ImageResult* r, const DatasetInfo& info,
                         const cv::Mat& why) {
  cv::Mat view(kHeight, kWidth, CV_8UC3, kWhite);
  draw_header(view, "draw mode: write a digit with the mouse", r, info);
  if (!r) {
    cv::putText(view, "prediction: (draw a digit)", {kMargin, 54}, cv::FONT_HERSHEY_SIMPLEX, 0.8,
                kAxis, 2, cv::LINE_AA);
  }
  const cv::Point at(kMargin, kHeader + kMargin);
  view(cv::Rect(at.x, at.y, kPanel, kPanel)) = kPanelBg;
  cv::Mat bgr;
  cv::cvtColor(canvas, bgr, cv::COLOR_GRAY2BGR);
  bgr.copyTo(view(draw_canvas_rect()));
  cv::rectangle(view, draw_canvas_rect(), kAxis, 1);
  put_text_centered(view, "canvas", at.x + kPanel / 2, at.y + kPanel + 18, 0.5, kAxis);
  draw_input(view, r ? r->input : cv::Mat(), why, r ? why_caption(*r, info) : "");
  draw_chart(view, r, info);
  draw_footer(view, "mouse: write   c: clear   d: back to the files   e: explain   q / Esc: quit");
  return view;
}

namespace {

struct DrawState {
  cv::Mat canvas;
  bool down = false;
  cv::Point last;
  bool changed = false;
};

void on_mouse(int event, int x, int y, int flags, void* user) {
  auto* s = static_cast<DrawState*>(user);
  const cv::Rect area = draw_canvas_rect();
  const cv::Point p(x - area.x, y - area.y);
  const int brush =
      kDrawCanvasSide / 16;  // a pen about as thick, relative to the digit, as MNIST's
  if (event == cv::EVENT_LBUTTONDOWN) {
    s->down = true;
    s->last = p;
    cv::circle(s->canvas, p, brush / 2, cv::Scalar(0), cv::FILLED, cv::LINE_AA);
    s->changed = true;
  } else if (event == cv::EVENT_MOUSEMOVE && s->down && (flags & cv::EVENT_FLAG_LBUTTON)) {
    cv::line(s->canvas, s->last, p, cv::Scalar(0), brush, cv::LINE_AA);
    s->last = p;
    s->changed = true;
  } else if (event == cv::EVENT_LBUTTONUP) {
    s->down = false;
  }
}

bool is_key(int key, std::initializer_list<int> codes) {
  return std::find(codes.begin(), codes.end(), key) != codes.end();
}

}  // namespace

ImageResult run_predict_window(const Predictor& predictor, const std::vector<ImageResult>& results,
                               Pipeline pipeline, bool draw) {
  const DatasetInfo& info = predictor.info();
  cv::namedWindow(kPredictWindowTitle, cv::WINDOW_AUTOSIZE | cv::WINDOW_GUI_NORMAL);
  DrawState state;
  state.canvas = cv::Mat(kDrawCanvasSide, kDrawCanvasSide, CV_8UC1, cv::Scalar(255));
  cv::setMouseCallback(kPredictWindowTitle, on_mouse, &state);
  bool drawing = draw || results.empty();
  size_t index = 0;
  ImageResult drawn;
  bool dirty = true;
  // Arrow keys as the highgui backends report them: X11 keysyms (GTK), Qt key codes, Windows.
  constexpr int kLeft[] = {65361, 0x01000012, 2424832};
  constexpr int kRight[] = {65363, 0x01000014, 2555904};
  // The canvas's prediction, once per change (strokes that arrived since the last look).
  // e: the input panel shows why the model answered (integrated gradients of the answer).
  bool explaining = false;
  const auto why = [&](const ImageResult& r) {
    if (!explaining || !r.ok() || r.input.empty()) return cv::Mat();
    return attribution_overlay(
        r.input,
        explain_input(predictor, r.input, r.predicted, AttributionMethod::kIntegratedGradients).map,
        std::max(1, 28 * kInputScale / std::max(r.input.rows, r.input.cols)));
  };
  const auto predict_canvas = [&] {
    state.changed = false;
    try {
      drawn = predict_image(predictor, state.canvas, "canvas", pipeline);
    } catch (const DataError&) {
      drawn = ImageResult();  // blank canvas: nothing to predict yet
    }
  };
  while (true) {
    if (drawing && state.changed) {
      predict_canvas();
      dirty = true;
    }
    if (dirty) {
      const cv::Mat view =
          drawing
              ? render_draw_view(state.canvas, drawn.input.empty() ? nullptr : &drawn, info,
                                 why(drawn))
              : render_file_view(results[index], info,
                                 std::to_string(index + 1) + "/" + std::to_string(results.size()),
                                 why(results[index]));
      cv::imshow(kPredictWindowTitle, view);
      dirty = false;
    }
    const int key = cv::waitKeyEx(30);
    if (cv::getWindowProperty(kPredictWindowTitle, cv::WND_PROP_VISIBLE) < 1) break;
    if (key < 0) continue;
    const int k = key & 0xFFFF;
    if (is_key(key, {27, 'q', 'Q'})) break;
    if (is_key(k, {'d', 'D'})) {
      if (!drawing || !results.empty()) {
        drawing = !drawing;
        dirty = true;
      }
    } else if (is_key(k, {'e', 'E'})) {
      explaining = !explaining;
      dirty = true;
    } else if (drawing && is_key(k, {'c', 'C'})) {
      state.canvas = cv::Scalar(255);
      drawn = ImageResult();
      dirty = true;
    } else if (!drawing &&
               (is_key(k, {'n', 'N', ' '}) || is_key(key, {kRight[0], kRight[1], kRight[2]}))) {
      index = (index + 1) % results.size();
      dirty = true;
    } else if (!drawing && (is_key(k, {'p', 'P'}) || is_key(key, {kLeft[0], kLeft[1], kLeft[2]}))) {
      index = (index + results.size() - 1) % results.size();
      dirty = true;
    }
  }
  cv::destroyAllWindows();
  // A quit key can arrive with the last strokes, before they were predicted: the result is the
  // canvas as the user left it.
  if (drawing && state.changed) predict_canvas();
  return drawn;
}

}  // namespace mnist::vision
