//! Figures, each written as PNG and SVG from one drawing function: learning curves per task,
//! aggregate intervals, probabilities of improvement, performance profiles and the plasticity
//! metrics around interventions.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::FontStyle;

use crate::normalize::normalized_label;
use crate::runs::Domain;
use crate::stats::{self, Aggregate};
use crate::{align, task_curves, Curve, Data, DomainStats, Options, PLASTICITY};

pub(crate) type DynResult = std::result::Result<(), Box<dyn Error>>;

/// A method's line in a panel: name, points, intervention steps.
type Line = (String, Vec<(f64, f64)>, Vec<u64>);

/// DejaVu Sans (Bitstream Vera licence, `assets/DejaVuSans-LICENSE.txt`), so that PNG text does not
/// depend on system fonts.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
pub(crate) const SANS: &str = "sans-serif";

pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_err() {
            panic!("the bundled DejaVu Sans is not a valid font");
        }
    });
}

pub(crate) const TITLE: u32 = 26;
pub(crate) const LABEL: u32 = 22;
pub(crate) const TICK: u32 = 18;
pub(crate) const LEGEND: u32 = 19;

/// Colours of methods in display order (Okabe-Ito, readable by colour-blind readers, then the
/// darker half of Paul Tol's muted scheme so that up to 15 methods besides `none` get colours
/// of their own); `none` is always black.
pub(crate) fn color(method: &str, methods: &[String]) -> RGBColor {
    const PALETTE: [RGBColor; 15] = [
        RGBColor(0, 114, 178),   // blue
        RGBColor(213, 94, 0),    // vermillion
        RGBColor(0, 158, 115),   // green
        RGBColor(204, 121, 167), // purple
        RGBColor(230, 159, 0),   // orange
        RGBColor(86, 180, 233),  // sky blue
        RGBColor(240, 228, 66),  // yellow
        RGBColor(120, 120, 120), // grey
        RGBColor(136, 34, 85),   // wine
        RGBColor(68, 170, 153),  // teal
        RGBColor(51, 34, 136),   // indigo
        RGBColor(153, 153, 51),  // olive
        RGBColor(204, 102, 119), // rose
        RGBColor(17, 119, 51),   // dark green
        RGBColor(170, 68, 153),  // magenta
    ];
    if method == "none" {
        return RGBColor(30, 30, 30);
    }
    let i = methods
        .iter()
        .filter(|m| *m != "none")
        .position(|m| m == method)
        .unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

/// `1250000` -> `1.25M`, `250000` -> `250k`.
pub fn fmt_step(s: f64) -> String {
    let trim = |x: f64, unit: &str| {
        let t = format!("{x:.2}");
        let t = t.trim_end_matches('0').trim_end_matches('.');
        format!("{t}{unit}")
    };
    if s.abs() >= 1e6 {
        trim(s / 1e6, "M")
    } else if s.abs() >= 1e3 {
        trim(s / 1e3, "k")
    } else {
        format!("{s:.0}")
    }
}

pub(crate) fn fmt_value(v: f64) -> String {
    let text = fmt_value_signed(v);
    // A tick a rounding error below zero reads `-0.00`.
    match text.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => text,
    }
}

fn fmt_value_signed(v: f64) -> String {
    if v.abs() >= 1e4 {
        fmt_step(v)
    } else if v.abs() >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

pub(crate) fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        0.05 * (hi - lo)
    } else {
        0.5 * lo.abs().max(1.0)
    };
    (lo - pad, hi + pad)
}

fn grid(n: usize, max_cols: usize) -> (usize, usize) {
    let cols = n.clamp(1, max_cols);
    (n.div_ceil(cols).max(1), cols)
}

macro_rules! render {
    ($out:expr, $stem:expr, $size:expr, $files:expr, |$root:ident| $body:expr) => {{
        register_font();
        let png = $out.join(format!("{}.png", $stem));
        let svg = $out.join(format!("{}.svg", $stem));
        {
            let $root = BitMapBackend::new(&png, $size).into_drawing_area();
            $body.map_err(|e| anyhow!("cannot draw {}: {e}", png.display()))?;
        }
        {
            let $root = SVGBackend::new(&svg, $size).into_drawing_area();
            $body.map_err(|e| anyhow!("cannot draw {}: {e}", svg.display()))?;
        }
        $files.push(png);
        $files.push(svg);
    }};
}
pub(crate) use render;

/// Draws every figure into `opts.out`; returns the files written.
pub fn draw_all(data: &Data, domains: &[DomainStats], opts: &Options) -> Result<Vec<PathBuf>> {
    let out: &Path = &opts.out;
    let mut files = Vec::new();
    let methods = data.methods();
    let tasks: Vec<(Domain, String)> = data.scores.keys().cloned().collect();
    let curves: Vec<((Domain, String), Vec<Curve>)> = tasks
        .iter()
        .map(|k| (k.clone(), task_curves(data, k, opts)))
        .collect();
    let (rows, cols) = grid(curves.len(), 3);
    let size = (cols as u32 * 640, rows as u32 * 460 + 70);
    render!(out, "curves", size, files, |root| draw_curves(
        &root,
        &curves,
        &methods,
        &opts.metric
    ));

    let plast: Vec<&str> = PLASTICITY
        .iter()
        .map(|p| p.0)
        // A metric that is zero in every run (DfI of an encoder a network does not have)
        // would only draw a flat line.
        .filter(|t| {
            data.runs.iter().any(|r| {
                r.series
                    .get(*t)
                    .is_some_and(|rows| rows.iter().any(|&(_, v)| v != 0.0))
            })
        })
        .collect();
    // Only tasks whose runs log a plasticity metric get a column.
    let ptasks: Vec<(Domain, String)> = tasks
        .iter()
        .filter(|k| {
            data.scores[*k].values().flatten().any(|s| {
                plast
                    .iter()
                    .any(|t| data.runs[s.run].series.contains_key(*t))
            })
        })
        .cloned()
        .collect();
    if !plast.is_empty() && !ptasks.is_empty() {
        let size = (
            ptasks.len() as u32 * 560 + 40,
            plast.len() as u32 * 380 + 70,
        );
        render!(out, "plasticity", size, files, |root| draw_plasticity(
            &root, data, &ptasks, &plast, &methods
        ));
    }

    for ds in domains.iter().filter(|d| !d.aggregates.is_empty()) {
        let stem = ds.domain.name().replace(' ', "_").to_lowercase();
        let n = ds.aggregates.len() as u32;
        render!(
            out,
            format!("aggregates_{stem}"),
            (1600, (200 + 64 * n).max(380)),
            files,
            |root| { draw_aggregates(&root, ds, &methods) }
        );
        render!(out, format!("profile_{stem}"), (900, 620), files, |root| {
            draw_profile(&root, ds, &methods)
        });
        let pairs = improvement_pairs(ds, &methods);
        if !pairs.is_empty() {
            let h = (170 + 56 * pairs.len() as u32).max(340);
            let w = 570 + improvement_label_width(&pairs);
            render!(out, format!("improvement_{stem}"), (w, h), files, |root| {
                draw_improvement(&root, ds, &pairs)
            });
        }
    }
    Ok(files)
}

/// A figure title centred in `area`, clear of its top edge. A title wider than the figure (one
/// narrow panel) is broken into two lines, at `; ` if it has one, else at the middle space,
/// and set smaller if a line is still too wide.
pub(crate) fn title<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, text: &str) -> DynResult
where
    DB::ErrorType: 'static,
{
    let (w, h) = area.dim_in_pixel();
    let font = |size: u32| {
        (SANS, size)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center))
    };
    let room = w.saturating_sub(24).max(1);
    let (text_w, _) = area.estimate_text_size(text, &font(TITLE))?;
    if text_w <= room {
        area.draw(&Text::new(
            text.to_string(),
            (w as i32 / 2, h as i32 / 2 + 4),
            font(TITLE),
        ))?;
        return Ok(());
    }
    let (a, b) = text
        .split_once("; ")
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .or_else(|| {
            let mid = text.len() / 2;
            let at = text[..mid]
                .rfind(' ')
                .or_else(|| text[mid..].find(' ').map(|i| i + mid))?;
            Some((text[..at].to_string(), text[at + 1..].to_string()))
        })
        .unwrap_or((text.to_string(), String::new()));
    let widest = area
        .estimate_text_size(&a, &font(TITLE))?
        .0
        .max(area.estimate_text_size(&b, &font(TITLE))?.0)
        .max(1);
    let size = if widest <= room {
        TITLE
    } else {
        (TITLE * room / widest).max(12)
    };
    let gap = size as i32 * 6 / 10;
    for (line, dy) in [(a, -gap), (b, gap + 2)] {
        area.draw(&Text::new(
            line,
            (w as i32 / 2, h as i32 / 2 + dy),
            font(size),
        ))?;
    }
    Ok(())
}

fn draw_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    curves: &[((Domain, String), Vec<Curve>)],
    methods: &[String],
    metric: &str,
) -> DynResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(70);
    title(
        &top,
        &format!("{metric}: IQM over seeds with 95 % bootstrap band; dashed lines: interventions"),
    )?;
    let (rows, cols) = grid(curves.len(), 3);
    let panels = body.split_evenly((rows, cols));
    for (i, (panel, ((_, task), cs))) in panels.iter().zip(curves).enumerate() {
        let xmax = cs
            .iter()
            .flat_map(|c| c.points.last().map(|p| p.0))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let (ylo, yhi) = range(
            cs.iter()
                .flat_map(|c| c.points.iter().flat_map(|p| [p.2, p.3])),
        );
        let mut chart = ChartBuilder::on(panel)
            .caption(task, (SANS, LABEL + 2))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(78)
            .build_cartesian_2d(0f64..xmax * 1.02, ylo..yhi)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.08))
            .x_desc("agent steps")
            .y_desc(if metric.contains("return") {
                "return"
            } else {
                metric
            })
            .axis_desc_style((SANS, LABEL))
            .label_style((SANS, TICK))
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&|x| fmt_step(*x))
            .y_label_formatter(&|y| fmt_value(*y))
            .draw()?;
        for c in cs {
            let col = color(&c.method, methods);
            if c.points.len() > 1 {
                let band: Vec<(f64, f64)> = c
                    .points
                    .iter()
                    .map(|p| (p.0 as f64, p.3))
                    .chain(c.points.iter().rev().map(|p| (p.0 as f64, p.2)))
                    .collect();
                chart.draw_series(std::iter::once(Polygon::new(band, col.mix(0.18).filled())))?;
            }
        }
        // Interventions every method shares are grey; others take their method's colour.
        for c in cs {
            let col = color(&c.method, methods);
            for &s in &c.interventions {
                let shared = cs
                    .iter()
                    .filter(|o| !o.interventions.is_empty())
                    .all(|o| o.interventions.contains(&s));
                let style = if shared {
                    BLACK.mix(0.45).stroke_width(2)
                } else {
                    col.stroke_width(2)
                };
                chart.draw_series(DashedLineSeries::new(
                    vec![(s as f64, ylo), (s as f64, yhi)],
                    9,
                    6,
                    style,
                ))?;
            }
        }
        for c in cs {
            let col = color(&c.method, methods);
            chart
                .draw_series(LineSeries::new(
                    c.points.iter().map(|p| (p.0 as f64, p.1)),
                    col.stroke_width(3),
                ))?
                .label(&c.method)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3))
                });
        }
        if i == 0 {
            chart
                .configure_series_labels()
                .label_font((SANS, LEGEND))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK.mix(0.3))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

fn draw_plasticity<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    data: &Data,
    tasks: &[(Domain, String)],
    tags: &[&str],
    methods: &[String],
) -> DynResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(70);
    title(
        &top,
        "Plasticity around interventions (mean over seeds; dashed lines: interventions)",
    )?;
    let panels = body.split_evenly((tags.len(), tasks.len().max(1)));
    for (r, tag) in tags.iter().enumerate() {
        let label = PLASTICITY
            .iter()
            .find(|p| p.0 == *tag)
            .map_or(*tag, |p| p.1);
        for (c, key) in tasks.iter().enumerate() {
            let panel = &panels[r * tasks.len() + c];
            let by_method = &data.scores[key];
            // Per method: mean over its runs on the common grid, and its intervention steps.
            let mut lines: Vec<Line> = Vec::new();
            for m in methods.iter().filter(|m| by_method.contains_key(*m)) {
                let runs: Vec<_> = by_method[m].iter().map(|s| &data.runs[s.run]).collect();
                let curves: Vec<Vec<(u64, f64)>> = runs
                    .iter()
                    .map(|r| r.curve(tag))
                    .filter(|c| !c.is_empty())
                    .collect();
                if curves.is_empty() {
                    continue;
                }
                let pts = align(&curves)
                    .into_iter()
                    .map(|(s, v)| (s as f64, stats::mean(&v)))
                    .collect();
                let mut iv: Vec<u64> = runs.iter().flat_map(|r| r.interventions.clone()).collect();
                iv.sort_unstable();
                iv.dedup();
                lines.push((m.clone(), pts, iv));
            }
            let all_iv: std::collections::BTreeSet<u64> =
                lines.iter().flat_map(|l| l.2.iter().copied()).collect();
            let xmax = lines
                .iter()
                .flat_map(|l| l.1.last().map(|p| p.0))
                .fold(1.0f64, f64::max);
            // One intervention step: zoom on it (a fifth of the run either side).
            let (x0, x1) = if all_iv.len() == 1 {
                let s = *all_iv.iter().next().unwrap() as f64;
                ((s - xmax / 5.0).max(0.0), (s + xmax / 5.0).min(xmax))
            } else {
                (0.0, xmax)
            };
            let (ylo, yhi) = range(
                lines
                    .iter()
                    .flat_map(|l| l.1.iter().filter(|p| p.0 >= x0 && p.0 <= x1).map(|p| p.1)),
            );
            let caption = if r == 0 { key.1.clone() } else { String::new() };
            let mut chart = ChartBuilder::on(panel)
                .caption(caption, (SANS, LABEL + 2))
                .margin(12)
                .x_label_area_size(if r + 1 == tags.len() { 48 } else { 30 })
                .y_label_area_size(78)
                .build_cartesian_2d(x0..x1.max(x0 + 1.0), ylo..yhi)?;
            let mut mesh = chart.configure_mesh();
            mesh.light_line_style(WHITE.mix(0.0))
                .bold_line_style(BLACK.mix(0.08))
                .axis_desc_style((SANS, LABEL))
                .label_style((SANS, TICK))
                .x_labels(5)
                .y_labels(5)
                .x_label_formatter(&|x| fmt_step(*x))
                .y_label_formatter(&|y| fmt_value(*y));
            if c == 0 {
                mesh.y_desc(label);
            }
            if r + 1 == tags.len() {
                mesh.x_desc("agent steps");
            }
            mesh.draw()?;
            for (m, _, iv) in &lines {
                let col = color(m, methods);
                for &s in iv {
                    let shared = lines
                        .iter()
                        .filter(|l| !l.2.is_empty())
                        .all(|l| l.2.contains(&s));
                    let style = if shared {
                        BLACK.mix(0.45).stroke_width(2)
                    } else {
                        col.stroke_width(2)
                    };
                    chart.draw_series(DashedLineSeries::new(
                        vec![(s as f64, ylo), (s as f64, yhi)],
                        9,
                        6,
                        style,
                    ))?;
                }
            }
            for (m, pts, _) in &lines {
                let col = color(m, methods);
                let visible: Vec<(f64, f64)> = pts
                    .iter()
                    .copied()
                    .filter(|p| p.0 >= x0 && p.0 <= x1)
                    .collect();
                chart
                    .draw_series(LineSeries::new(visible, col.stroke_width(3)))?
                    .label(m)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3))
                    });
            }
            if r == 0 && c == 0 {
                chart
                    .configure_series_labels()
                    .label_font((SANS, LEGEND))
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .position(SeriesLabelPosition::UpperLeft)
                    .draw()?;
            }
        }
    }
    root.present()?;
    Ok(())
}

fn draw_aggregates<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ds: &DomainStats,
    methods: &[String],
) -> DynResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(70);
    title(
        &top,
        &format!(
            "{}: {} over {} tasks (95 % stratified bootstrap CIs)",
            ds.domain.name(),
            normalized_label(ds.domain),
            ds.tasks.len()
        ),
    )?;
    let n = ds.aggregates.len();
    let names: Vec<String> = ds.aggregates.iter().map(|a| a.0.clone()).collect();
    let (left, rest) = body.split_horizontally(220);
    let panels = rest.split_evenly((1, Aggregate::ALL.len()));
    for (i, (panel, agg)) in panels.iter().zip(Aggregate::ALL).enumerate() {
        let ests: Vec<_> = ds
            .aggregates
            .iter()
            .map(|(m, es)| (m.clone(), es.iter().find(|e| e.0 == agg).unwrap().1))
            .collect();
        let (xlo, xhi) = range(ests.iter().flat_map(|(_, e)| [e.lo, e.hi, e.point]));
        let title = match agg {
            Aggregate::Iqm => "IQM",
            Aggregate::Mean => "Mean",
            Aggregate::Median => "Median",
            Aggregate::OptimalityGap => "Optimality gap (lower is better)",
        };
        let mut chart = ChartBuilder::on(panel)
            .caption(title, (SANS, LABEL))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(0)
            .build_cartesian_2d(xlo..xhi, -0.5f64..n as f64 - 0.5)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.1))
            .label_style((SANS, TICK))
            .x_labels(5)
            .x_label_formatter(&|x| format!("{x:.2}"))
            .draw()?;
        for (k, (m, e)) in ests.iter().enumerate() {
            let y = (n - 1 - k) as f64;
            let col = color(m, methods);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(e.lo, y - 0.3), (e.hi, y + 0.3)],
                col.mix(0.75).filled(),
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(e.point, y - 0.36), (e.point, y + 0.36)],
                BLACK.stroke_width(3),
            )))?;
        }
        if i == 0 {
            // Method names, right-aligned against the first panel's plotting area.
            let (_, h) = left.dim_in_pixel();
            let plot_top = 14 + LABEL as i32 + 10;
            let plot_h = h as i32 - plot_top - 14 - 40;
            for (k, m) in names.iter().enumerate() {
                let y = plot_top + ((k as f64 + 0.5) * plot_h as f64 / n as f64) as i32;
                left.draw(&Text::new(
                    m.clone(),
                    (210, y),
                    (SANS, LABEL)
                        .into_font()
                        .color(&color(m, methods))
                        .pos(Pos::new(HPos::Right, VPos::Center)),
                ))?;
            }
        }
    }
    root.present()?;
    Ok(())
}

fn draw_profile<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ds: &DomainStats,
    methods: &[String],
) -> DynResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let x0 = *ds.profile_taus.first().unwrap_or(&0.0);
    let x1 = *ds.profile_taus.last().unwrap_or(&1.0);
    let label = normalized_label(ds.domain);
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{}: performance profile (95 % CIs)", ds.domain.name()),
            (SANS, TITLE),
        )
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, 0f64..1.02)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.08))
        .x_desc(format!("{label} (τ)"))
        .y_desc("fraction of runs with score > τ")
        .axis_desc_style((SANS, LABEL))
        .label_style((SANS, TICK))
        .x_label_formatter(&|x| format!("{x:.2}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .draw()?;
    for (m, es) in &ds.profiles {
        let col = color(m, methods);
        let band: Vec<(f64, f64)> = ds
            .profile_taus
            .iter()
            .zip(es)
            .map(|(t, e)| (*t, e.hi))
            .chain(
                ds.profile_taus
                    .iter()
                    .zip(es)
                    .rev()
                    .map(|(t, e)| (*t, e.lo)),
            )
            .collect();
        chart.draw_series(std::iter::once(Polygon::new(band, col.mix(0.18).filled())))?;
        chart
            .draw_series(LineSeries::new(
                ds.profile_taus.iter().zip(es).map(|(t, e)| (*t, e.point)),
                col.stroke_width(3),
            ))?
            .label(m)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], col.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .label_font((SANS, LEGEND))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The pairs drawn: each unordered pair once, as `P(later > earlier)` in display order (so
/// `P(fire > none)`).
fn improvement_pairs(
    ds: &DomainStats,
    methods: &[String],
) -> Vec<(String, String, crate::stats::Estimate)> {
    let pos = |m: &String| methods.iter().position(|x| x == m).unwrap_or(usize::MAX);
    ds.improvement
        .iter()
        .filter(|(x, y, _)| pos(x) > pos(y))
        .cloned()
        .collect()
}

/// Pixels for the longest `P(x > y)` label at the tick font size (DejaVu Sans averages about
/// 0.6 em per character).
fn improvement_label_width(pairs: &[(String, String, crate::stats::Estimate)]) -> u32 {
    let longest = pairs
        .iter()
        .map(|(x, y, _)| x.chars().count() + y.chars().count() + 6)
        .max()
        .unwrap_or(0) as u32;
    (longest * (TICK + 1) * 6 / 10 + 40).max(330)
}

fn draw_improvement<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    ds: &DomainStats,
    pairs: &[(String, String, crate::stats::Estimate)],
) -> DynResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let n = pairs.len();
    let labels: Vec<String> = pairs
        .iter()
        .map(|(x, y, _)| format!("P({x} > {y})"))
        .collect();
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!(
                "{}: probability of improvement (95 % CIs)",
                ds.domain.name()
            ),
            (SANS, TITLE),
        )
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(improvement_label_width(pairs))
        .build_cartesian_2d(0f64..1f64, -0.5f64..n as f64 - 0.5)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE.mix(0.0))
        .bold_line_style(BLACK.mix(0.1))
        .x_desc("probability")
        .axis_desc_style((SANS, LABEL))
        .label_style((SANS, TICK + 1))
        .y_labels(n)
        .y_label_formatter(&|y| {
            let k = y.round();
            if (y - k).abs() > 1e-6 || k < 0.0 || k as usize >= n {
                return String::new();
            }
            labels[n - 1 - k as usize].clone()
        })
        .x_label_formatter(&|x| format!("{x:.1}"))
        .draw()?;
    chart.draw_series(DashedLineSeries::new(
        vec![(0.5, -0.5), (0.5, n as f64 - 0.5)],
        8,
        6,
        BLACK.mix(0.5).stroke_width(2),
    ))?;
    for (k, (_, _, e)) in pairs.iter().enumerate() {
        let y = (n - 1 - k) as f64;
        let col = RGBColor(0, 114, 178);
        chart.draw_series(std::iter::once(Rectangle::new(
            [(e.lo, y - 0.3), (e.hi, y + 0.3)],
            col.mix(0.6).filled(),
        )))?;
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(e.point, y - 0.36), (e.point, y + 0.36)],
            BLACK.stroke_width(3),
        )))?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_labels() {
        assert_eq!(fmt_step(1_250_000.0), "1.25M");
        assert_eq!(fmt_step(250_000.0), "250k");
        assert_eq!(fmt_step(2_000_000.0), "2M");
        assert_eq!(fmt_step(500.0), "500");
    }

    #[test]
    fn value_labels_have_no_negative_zero() {
        assert_eq!(fmt_value(-1e-17), "0.00");
        assert_eq!(fmt_value(-0.001), "0.00");
        assert_eq!(fmt_value(-0.2), "-0.20");
        assert_eq!(fmt_value(0.25), "0.25");
        assert_eq!(fmt_value(-12.0), "-12");
    }

    #[test]
    fn sixteen_methods_have_sixteen_colours() {
        let methods: Vec<String> = std::iter::once("none".to_string())
            .chain((1..16).map(|k| format!("m{k}")))
            .collect();
        let colours: std::collections::BTreeSet<(u8, u8, u8)> = methods
            .iter()
            .map(|m| {
                let c = color(m, &methods);
                (c.0, c.1, c.2)
            })
            .collect();
        assert_eq!(colours.len(), 16);
    }
}
