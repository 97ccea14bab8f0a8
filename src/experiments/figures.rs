//! Figures of the report: plain data ([`Figure`], serialized into `results.json`) and their SVG
//! rendering with plotters' SVG backend.
//!
//! Two kinds cover every figure of `kvsched reproduce`: line/point charts on linear or log axes
//! with labelled reference lines ([`FigureData::Lines`]), and histograms ([`FigureData::Hist`],
//! bins computed here and drawn as rectangles).

use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

/// How a series is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Style {
    /// Solid line with markers.
    Line,
    /// Markers only.
    Points,
    /// Thin dashed-looking reference line (drawn thin, no markers).
    Reference,
}

/// One named series of `(x, y)` points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64)>,
    /// Style.
    pub style: Style,
}

impl Series {
    /// A series.
    pub fn new(label: &str, points: Vec<(f64, f64)>, style: Style) -> Series {
        Series { label: label.into(), points, style }
    }
}

/// What a figure shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FigureData {
    /// Lines and points.
    Lines {
        /// Title.
        title: String,
        /// X axis label.
        x_label: String,
        /// Y axis label.
        y_label: String,
        /// Log-scaled x.
        log_x: bool,
        /// Log-scaled y.
        log_y: bool,
        /// The series.
        series: Vec<Series>,
        /// Vertical reference lines `(x, label)`.
        vlines: Vec<(f64, String)>,
        /// Horizontal reference lines `(y, label)`.
        hlines: Vec<(f64, String)>,
    },
    /// Histograms of samples (one per label) over common bins.
    Hist {
        /// Title.
        title: String,
        /// X axis label.
        x_label: String,
        /// `(label, samples)`.
        samples: Vec<(String, Vec<f64>)>,
        /// Number of bins.
        bins: usize,
    },
}

/// A figure: file name, the claims it illustrates, and its data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// File name in the report directory (`*.svg`).
    pub file: String,
    /// Claim IDs it illustrates.
    pub claims: Vec<String>,
    /// The data.
    pub data: FigureData,
}

impl FigureData {
    /// An empty line chart.
    pub fn lines(title: &str, x_label: &str, y_label: &str) -> FigureData {
        FigureData::Lines {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            log_x: false,
            log_y: false,
            series: vec![],
            vlines: vec![],
            hlines: vec![],
        }
    }

    fn edit(mut self, f: impl FnOnce(&mut Vec<Series>, &mut bool, &mut bool, &mut Lines)) -> Self {
        if let FigureData::Lines { series, log_x, log_y, vlines, hlines, .. } = &mut self {
            f(series, log_x, log_y, &mut (vlines, hlines));
        }
        self
    }

    /// Log-scaled x axis.
    pub fn log_x(self) -> Self {
        self.edit(|_, x, _, _| *x = true)
    }

    /// Log-scaled y axis.
    pub fn log_y(self) -> Self {
        self.edit(|_, _, y, _| *y = true)
    }

    /// Adds a series.
    pub fn series(self, s: Series) -> Self {
        self.edit(|v, _, _, _| v.push(s))
    }

    /// Adds a vertical reference line (ignored if not finite).
    pub fn vline(self, x: f64, label: &str) -> Self {
        self.edit(|_, _, _, l| {
            if x.is_finite() {
                l.0.push((x, label.into()))
            }
        })
    }

    /// Adds a horizontal reference line (ignored if not finite).
    pub fn hline(self, y: f64, label: &str) -> Self {
        self.edit(|_, _, _, l| {
            if y.is_finite() {
                l.1.push((y, label.into()))
            }
        })
    }

    /// Wraps into a [`Figure`].
    pub fn figure(self, file: &str, claims: &[&str]) -> Figure {
        Figure {
            file: file.into(),
            claims: claims.iter().map(|c| c.to_string()).collect(),
            data: self,
        }
    }
}

type Lines<'a> = (&'a mut Vec<(f64, String)>, &'a mut Vec<(f64, String)>);

/// Renders a figure to an SVG document.
pub fn render_svg(fig: &Figure) -> Result<String, String> {
    let mut buf = String::new();
    {
        let root = SVGBackend::with_string(&mut buf, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match &fig.data {
            FigureData::Lines { log_x, log_y, .. } => {
                let ((x0, x1), (y0, y1)) = bounds(&fig.data, *log_x, *log_y);
                match (*log_x, *log_y) {
                    (false, false) => lines(&root, &fig.data, x0..x1, y0..y1),
                    (true, false) => lines(&root, &fig.data, (x0..x1).log_scale(), y0..y1),
                    (false, true) => lines(&root, &fig.data, x0..x1, (y0..y1).log_scale()),
                    (true, true) => {
                        lines(&root, &fig.data, (x0..x1).log_scale(), (y0..y1).log_scale())
                    }
                }?;
            }
            FigureData::Hist { .. } => hist(&root, &fig.data)?,
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(buf)
}

/// Axis ranges covering every finite point (positive ones on log axes), with a margin.
fn bounds(data: &FigureData, log_x: bool, log_y: bool) -> ((f64, f64), (f64, f64)) {
    let FigureData::Lines { series, vlines, hlines, .. } = data else {
        return ((0.0, 1.0), (0.0, 1.0));
    };
    let ok = |v: f64, log: bool| v.is_finite() && (!log || v > 0.0);
    let mut xs: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.0)).collect();
    let mut ys: Vec<f64> = series.iter().flat_map(|s| s.points.iter().map(|p| p.1)).collect();
    xs.extend(vlines.iter().map(|l| l.0));
    ys.extend(hlines.iter().map(|l| l.0));
    let span = |v: Vec<f64>, log: bool| {
        let v: Vec<f64> = v.into_iter().filter(|&x| ok(x, log)).collect();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match (lo.is_finite(), log) {
            (false, _) => (1.0, 10.0),
            (true, true) => (lo / 1.3, hi * 1.3),
            (true, false) => {
                let pad = ((hi - lo) * 0.05).max(1e-9 * hi.abs().max(1.0));
                (lo - pad, hi + pad)
            }
        }
    };
    (span(xs, log_x), span(ys, log_y))
}

fn color(i: usize) -> RGBColor {
    const C: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(255, 127, 14),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    C[i % C.len()]
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

fn lines<X, Y>(root: &Area<'_>, data: &FigureData, x: X, y: Y) -> Result<(), String>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let FigureData::Lines { title, x_label, y_label, series, vlines, hlines, .. } = data else {
        return Err("not a line chart".into());
    };
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(75)
        .build_cartesian_2d(x, y)
        .map_err(e)?;
    chart.configure_mesh().x_desc(x_label).y_desc(y_label).draw().map_err(e)?;
    let (xr, yr) = (chart.x_range(), chart.y_range());
    for (i, s) in series.iter().enumerate() {
        let c = color(i);
        let pts: Vec<(f64, f64)> =
            s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
        let anno = match s.style {
            Style::Line | Style::Reference => {
                let w = if s.style == Style::Line { 2 } else { 1 };
                chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(w))).map_err(e)?
            }
            Style::Points => {
                chart.draw_series(pts.iter().map(|&p| Circle::new(p, 5, c.filled()))).map_err(e)?
            }
        };
        anno.label(&s.label).legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c));
        if s.style == Style::Line {
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(e)?;
        }
    }
    for (k, (v, label)) in vlines.iter().enumerate() {
        let c = color(series.len() + k);
        let seg = vec![(*v, yr.start), (*v, yr.end)];
        let s = chart.draw_series(LineSeries::new(seg, c.stroke_width(1))).map_err(e)?;
        s.label(label).legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c));
    }
    for (k, (v, label)) in hlines.iter().enumerate() {
        let c = color(series.len() + vlines.len() + k);
        let seg = vec![(xr.start, *v), (xr.end, *v)];
        let s = chart.draw_series(LineSeries::new(seg, c.stroke_width(1))).map_err(e)?;
        s.label(label).legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Bin counts of `samples` over `[lo, hi]` in `bins` equal bins.
pub fn bin_counts(samples: &[f64], lo: f64, hi: f64, bins: usize) -> Vec<u64> {
    let mut out = vec![0u64; bins.max(1)];
    let w = (hi - lo) / out.len() as f64;
    for &s in samples.iter().filter(|s| s.is_finite()) {
        let i = if w > 0.0 { ((s - lo) / w).floor() as isize } else { 0 };
        let last = out.len() as isize - 1;
        out[i.clamp(0, last) as usize] += 1;
    }
    out
}

fn hist(root: &Area<'_>, data: &FigureData) -> Result<(), String> {
    let FigureData::Hist { title, x_label, samples, bins } = data else {
        return Err("not a histogram".into());
    };
    let all: Vec<f64> = samples.iter().flat_map(|s| s.1.iter().copied()).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() { (lo, hi.max(lo + 1e-3)) } else { (0.0, 1.0) };
    let counts: Vec<Vec<u64>> = samples.iter().map(|s| bin_counts(&s.1, lo, hi, *bins)).collect();
    let ymax = counts.iter().flatten().copied().max().unwrap_or(1).max(1) as f64 * 1.1;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0.0..ymax)
        .map_err(e)?;
    chart.configure_mesh().x_desc(x_label).y_desc("count").draw().map_err(e)?;
    let w = (hi - lo) / *bins as f64;
    let k = samples.len().max(1) as f64;
    for (i, ((label, _), cs)) in samples.iter().zip(&counts).enumerate() {
        let c = color(i);
        let bars = cs.iter().enumerate().map(|(b, &n)| {
            let x0 = lo + w * b as f64 + w * i as f64 / k;
            Rectangle::new([(x0, 0.0), (x0 + w / k, n as f64)], c.mix(0.7).filled())
        });
        let s = chart.draw_series(bars).map_err(e)?;
        s.label(label).legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(e)?;
    Ok(())
}
